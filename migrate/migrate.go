// Package migrate runs warren's whole cutover in order: preflight both
// brokers, definitions (export, plan, check, import), drain (dynamic
// shovels), verification, and cleanup of warren's shovels.
//
// Resume is a property of every phase rather than a checkpoint of this
// package: the import creates only what is missing and reports the rest
// identical, the drain keeps its own state file and picks up its running
// shovels, verification and cleanup only read or remove warren's objects.
// So running the same migration again, after a kill at any point or after
// success, finishes the job or finds nothing to do.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/preflight"
	"github.com/warrenmq/warren/shovel"
	"github.com/warrenmq/warren/verify"
)

// Phase names a step of the migration.
type Phase string

// The phases, in the order they run.
const (
	Preflight   Phase = "preflight"
	Definitions Phase = "definitions"
	Drain       Phase = "drain"
	Verify      Phase = "verify"
	Cleanup     Phase = "cleanup"
)

// Options configure a migration.
type Options struct {
	Source, Target broker.Endpoint
	// Inputs are findings about the inputs made before Run (the CLI's
	// flags): the preflight reports them with its own, and fails on any
	// that failed.
	Inputs []preflight.Finding
	// Vhosts limits the migration to these vhosts; all when empty.
	Vhosts []string
	// Plan holds the definitions decisions (queue types, mirroring, ...).
	Plan definitions.Options
	// Drain holds the drain's settings; its Source, Target and Vhosts are
	// filled in from the fields above.
	Drain shovel.Options
	// Verify holds verification settings beyond the endpoints (service
	// address, node APIs, ...); SkipVerify turns the phase off.
	Verify     verify.Options
	SkipVerify bool
	// StatePath keeps the definitions of source queues the drain deleted
	// (see snapshot); empty keeps nothing between runs.
	StatePath string
	// DryRun stops after the plan has been checked against the target and
	// the backlog measured: nothing changes on either broker.
	DryRun bool
	// Live runs the cutover while the applications keep running (see
	// Live cutover in the package doc): definitions first, then, once the
	// consumers read from the cluster, shovels that keep moving what the
	// producers still publish to the source until they have moved too.
	Live bool
}

// PhaseResult is one phase's outcome in the summary.
type PhaseResult struct {
	Phase   Phase   `json:"phase"`
	Status  string  `json:"status"` // ok, failed, skipped, waiting (a live cutover's next step is the operator's)
	Seconds float64 `json:"seconds"`
	Detail  string  `json:"detail,omitempty"`
}

// Summary is everything a migration did, phase by phase.
type Summary struct {
	DryRun    bool                      `json:"dry_run"`
	Phases    []PhaseResult             `json:"phases"`
	Preflight *PreflightReport          `json:"preflight,omitempty"`
	Plan      *definitions.Plan         `json:"plan,omitempty"`
	Check     *definitions.CheckResult  `json:"check,omitempty"`
	Import    *definitions.ImportResult `json:"import,omitempty"`
	Drain     *shovel.Report            `json:"drain,omitempty"`
	Verify    *verify.Report            `json:"verify,omitempty"`
	Removed   []shovel.AbortResult      `json:"removed_shovels,omitempty"`
	Backlog   []QueueBacklog            `json:"backlog,omitempty"`
	Seconds   float64                   `json:"seconds"`
	// Next says what the operator does next.
	Next string `json:"next,omitempty"`
}

// ErrNextStep stops a live cutover that waits for the operator: the
// summary's Next says what to do before running the same command again.
var ErrNextStep = errors.New("the live cutover waits for the next step")

// The steps a live cutover asks of the operator.
const (
	nextMoveConsumers = "the definitions are on the cluster. Next: point your consumers at the cluster (its client Service), " +
		"then run the same command again: its shovels will move what is queued and what the producers still publish to the source"
	nextMoveProducers = "point your producers at the cluster; the drain keeps moving what they still publish to the source, " +
		"and finishes each queue once no client is attached to the source and the queue stayed empty for --settle"
	nextDone         = "every message is on the cluster and the applications use it. Keep the old broker until you are sure, then retire it"
	nextAfterCutover = "point your applications at the cluster (its client Service), and keep the old broker until you are sure"
)

// PhaseError is a migration that stopped in a phase.
type PhaseError struct {
	Phase Phase
	Err   error
}

func (e *PhaseError) Error() string {
	msg := e.Err.Error()
	if strings.HasPrefix(msg, string(e.Phase)+":") {
		return msg // a preflight.Error names its phase
	}
	return fmt.Sprintf("%s: %s", e.Phase, msg)
}
func (e *PhaseError) Unwrap() error { return e.Err }

// FailedPhase returns the phase a Run error stopped in, "" when none.
func FailedPhase(err error) Phase {
	var pe *PhaseError
	if errors.As(err, &pe) {
		return pe.Phase
	}
	return ""
}

type runner struct {
	opts     Options
	sum      *Summary
	src, dst *broker.API
}

// Run migrates the source into the target. It returns the summary so far
// even when a phase fails; the error is a *PhaseError.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	start := time.Now()
	r := &runner{opts: opts, sum: &Summary{DryRun: opts.DryRun}}
	defer func() { r.sum.Seconds = time.Since(start).Seconds() }()
	var err error
	if r.src, err = opts.Source.NewAPI(); err != nil {
		return r.sum, &PhaseError{Preflight, err}
	}
	if r.dst, err = opts.Target.NewAPI(); err != nil {
		return r.sum, &PhaseError{Preflight, err}
	}
	phases := []struct {
		phase Phase
		run   func(context.Context) (string, error)
		dry   bool // runs in a dry run too
	}{
		{Preflight, r.preflight, true},
		{Definitions, r.definitions, true},
		{Drain, r.drain, false},
		{Verify, r.verify, false},
		{Cleanup, r.cleanup, false},
	}
	for _, p := range phases {
		if opts.DryRun && !p.dry {
			r.sum.Phases = append(r.sum.Phases, PhaseResult{Phase: p.phase, Status: "skipped", Detail: "dry run"})
			continue
		}
		if p.phase == Verify && opts.SkipVerify {
			r.sum.Phases = append(r.sum.Phases, PhaseResult{Phase: p.phase, Status: "skipped", Detail: "--skip-verify"})
			continue
		}
		slog.Info("phase started", "phase", p.phase)
		t0 := time.Now()
		detail, err := p.run(ctx)
		res := PhaseResult{Phase: p.phase, Status: "ok", Seconds: time.Since(t0).Seconds(), Detail: detail}
		if err != nil {
			res.Status, res.Detail = "failed", err.Error()
			var pe *preflight.Error
			if errors.As(err, &pe) {
				// The findings are in the summary's preflight table.
				res.Detail = strings.TrimPrefix(pe.Summary(), "preflight: ")
			}
			if errors.Is(err, ErrNextStep) {
				res.Status = "waiting"
			}
			r.sum.Phases = append(r.sum.Phases, res)
			return r.sum, &PhaseError{p.phase, err}
		}
		r.sum.Phases = append(r.sum.Phases, res)
		slog.Info("phase done", "phase", p.phase, "seconds", fmt.Sprintf("%.1f", res.Seconds), "detail", detail)
	}
	switch {
	case opts.DryRun:
	case opts.Live:
		r.sum.Next = nextDone
	default:
		r.sum.Next = nextAfterCutover
	}
	return r.sum, nil
}

func (r *runner) definitions(ctx context.Context) (string, error) {
	// Preflight planned and checked; Import checks again, against the
	// target as it is now.
	plan := r.sum.Plan
	if !r.opts.DryRun {
		var vhosts []string
		for _, v := range plan.Want().Objects(definitions.KindVhost) {
			vhosts = append(vhosts, v.Name())
		}
		if err := recordPlan(r.opts.StatePath, vhosts, r.opts.Plan); err != nil {
			return "", err
		}
	}
	if r.opts.DryRun {
		check := r.sum.Check
		return fmt.Sprintf("%d new, %d identical, %d conflicts; nothing imported (dry run)",
			check.Count(definitions.StatusNew), check.Count(definitions.StatusIdentical), check.Count(definitions.StatusConflict)), nil
	}
	res, err := definitions.Import(ctx, r.dst, plan)
	r.sum.Import = res
	if res != nil {
		r.sum.Check = res.Check
	}
	if err != nil {
		return "", err
	}
	created := 0
	for _, n := range res.Created {
		created += n
	}
	detail := fmt.Sprintf("%d created, %d identical, %d skipped, %d confirmed on the target", created, res.Identical, res.Skipped, res.Confirmed)
	if res.Placement != nil {
		detail += "; queues " + res.Placement.String()
	}
	return detail, nil
}

func (r *runner) drainOptions() shovel.Options {
	o := r.opts.Drain
	o.Source, o.Target, o.Vhosts = r.opts.Source, r.opts.Target, r.opts.Vhosts
	o.AllowLive = o.AllowLive || r.opts.Live
	// A rerun after a failed verification checks the earlier counts again.
	o.Unverified = true
	return o
}

func (r *runner) drain(ctx context.Context) (string, error) {
	if r.opts.Live {
		// The definitions are on the cluster now; consumers move first,
		// or they would race the shovels for every message.
		if err := shovel.CheckConsumers(ctx, r.drainOptions()); err != nil {
			if errors.Is(err, shovel.ErrSourceConsumers) {
				r.sum.Next = nextMoveConsumers
				return "", fmt.Errorf("%w: %w", ErrNextStep, err)
			}
			return "", err
		}
		slog.Info("live cutover: " + nextMoveProducers)
	}
	rep, err := shovel.Drain(ctx, r.drainOptions())
	r.sum.Drain = rep
	if rep != nil {
		if serr := r.rememberDeleted(rep); serr != nil && err == nil {
			err = serr
		}
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d messages from %d queues in %.1fs (%.0f msg/s), shovels on the %s side",
		rep.Messages, len(rep.Queues), rep.Seconds, rep.Rate, rep.Side), nil
}

// rememberDeleted adds the source queues this drain deleted to the
// snapshot, so later runs still plan them (see snapshot).
func (r *runner) rememberDeleted(rep *shovel.Report) error {
	gone := map[string]bool{}
	for _, q := range rep.Queues {
		if q.SourceDeleted {
			gone[q.Vhost+"\x00"+q.Queue] = true
		}
	}
	if len(gone) == 0 || r.sum.Plan == nil {
		return nil
	}
	snap, err := loadSnapshot(r.opts.StatePath)
	if err != nil {
		return err
	}
	if snap == nil {
		snap = &snapshot{}
	}
	if snap.DeletedByDrain == nil {
		snap.DeletedByDrain = definitions.New()
	}
	deleted := r.sum.Plan.Source().QueuesAndBindingsInto(func(vhost, queue string) bool { return gone[vhost+"\x00"+queue] })
	snap.DeletedByDrain = definitions.Union(snap.DeletedByDrain, deleted)
	return saveSnapshot(r.opts.StatePath, snap)
}

func (r *runner) verify(ctx context.Context) (string, error) {
	o := r.opts.Verify
	o.Target = r.opts.Target
	src := r.opts.Source
	o.Source = &src
	o.Plan = r.opts.Plan
	if r.sum.Plan != nil {
		o.Want = r.sum.Plan.Want()
	}
	if len(o.Vhosts) == 0 {
		o.Vhosts = r.opts.Vhosts
	}
	if r.sum.Drain != nil {
		o.DrainReport = nil
		for _, q := range r.sum.Drain.Queues {
			o.DrainReport = append(o.DrainReport, verify.QueueCount{
				Vhost: q.Vhost, Queue: q.Queue, SourceBefore: q.SourceBefore, TargetBefore: q.TargetBefore, Moved: q.Moved,
				SourceDeleted: q.SourceDeleted, DuplicateBound: q.DuplicateBound, Live: q.Live,
			})
		}
	}
	rep, err := verify.Run(ctx, o)
	r.sum.Verify = rep
	if err != nil {
		return "", err
	}
	if err := rep.Err(); err != nil {
		return "", err
	}
	// Counts that verified are settled: later runs stop re-checking them
	// (applications may consume from the cluster from now on).
	if r.sum.Drain != nil {
		var done [][2]string
		for _, q := range r.sum.Drain.Queues {
			done = append(done, [2]string{q.Vhost, q.Queue})
		}
		if err := shovel.MarkVerified(r.opts.Drain.StatePath, done); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d checks passed, %d warnings, %d skipped", rep.Passed, rep.Warned, rep.Skipped), nil
}

// cleanup removes any shovel of warren's still declared on either side (the
// drain removes each as its queue completes; this catches leftovers of
// earlier, interrupted runs that found nothing left to move).
func (r *runner) cleanup(ctx context.Context) (string, error) {
	removed, err := shovel.Abort(ctx, r.drainOptions(), false)
	r.sum.Removed = removed
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d leftover shovels removed", len(removed)), nil
}
