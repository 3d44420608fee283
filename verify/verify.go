// Package verify checks a target RabbitMQ cluster after it is deployed and
// after a migration's cutover, and reports every check with its status,
// detail and duration:
//
//   - health: every node accepts AMQP and HTTP API logins (plain or TLS, and
//     through the client Service address when given); the expected number
//     of nodes runs; no alarms, no partitions; every quorum queue has its
//     full membership online and a leader;
//   - round trips: per vhost, messages published with confirms and
//     mandatory through each node into a warren-owned quorum queue and
//     consumed through another node arrive byte for byte with every
//     property; latency p50/p99 is reported;
//   - routing: every binding exists on the target, and the bindings that can
//     be exercised without any user queue receiving a probe are exercised;
//   - definitions: the target's definitions equal the source's export after
//     the planned transforms;
//   - conservation: the per-queue counts a drain recorded add up on the
//     target.
//
// Verification never touches users' messages: it publishes only to its own
// queues and to exchanges whose routing provably reaches no user queue, and
// reads queue depths with passive declares.
//
// Run is the entry point; `warren verify` prints its Report. The package's
// tests run the same checks against the local lab, or against a deployed
// cluster named by WARREN_* variables (see the README).
package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
)

// Status is the outcome of one check.
type Status string

// Check outcomes. A skipped check always says why in its Detail.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
	// Warn passes with something the operator should know (duplicates
	// within the bound a drain's redeliveries explain, say).
	Warn Status = "warn"
)

// ErrFailed marks a verification in which at least one check failed.
var ErrFailed = errors.New("verification failed")

// Area groups checks; Options.Areas selects which areas run.
type Area string

// The check areas, in the order Run performs them.
const (
	AreaHealth       Area = "health"
	AreaRoundTrip    Area = "roundtrip"
	AreaRouting      Area = "routing"
	AreaDefinitions  Area = "definitions"
	AreaConservation Area = "conservation"
)

// Areas lists every area in the order Run performs them.
var Areas = []Area{AreaHealth, AreaRoundTrip, AreaRouting, AreaDefinitions, AreaConservation}

// ParseArea turns a name such as "routing" into an Area.
func ParseArea(s string) (Area, error) {
	a := Area(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Areas, a) {
		return a, nil
	}
	names := make([]string, len(Areas))
	for i, a := range Areas {
		names[i] = string(a)
	}
	return "", fmt.Errorf("unknown check area %q: want one of %s", s, strings.Join(names, ", "))
}

// Check is the result of one check.
type Check struct {
	Area     Area
	Name     string
	Status   Status
	Detail   string
	Duration time.Duration
}

type checkJSON struct {
	Area       Area    `json:"area"`
	Name       string  `json:"name"`
	Status     Status  `json:"status"`
	Detail     string  `json:"detail,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// MarshalJSON writes the duration in milliseconds, which tools read more
// easily than Go's nanosecond integers.
func (c Check) MarshalJSON() ([]byte, error) {
	return json.Marshal(checkJSON{c.Area, c.Name, c.Status, c.Detail, ms(c.Duration)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Check) UnmarshalJSON(b []byte) error {
	var j checkJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Check{j.Area, j.Name, j.Status, j.Detail, time.Duration(j.DurationMS * float64(time.Millisecond))}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Latency summarises round-trip times: from publishing a message to its
// delivery to a consumer on another node.
type Latency struct {
	Samples int
	P50     time.Duration
	P99     time.Duration
	Max     time.Duration
}

// MarshalJSON writes the times in milliseconds.
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"samples": l.Samples, "p50_ms": ms(l.P50), "p99_ms": ms(l.P99), "max_ms": ms(l.Max)})
}

// String renders the percentiles for a report line.
func (l Latency) String() string {
	return fmt.Sprintf("p50 %s, p99 %s over %d messages", round(l.P50), round(l.P99), l.Samples)
}

func round(d time.Duration) time.Duration {
	if d > 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// latencyOf computes nearest-rank percentiles.
func latencyOf(samples []time.Duration) *Latency {
	if len(samples) == 0 {
		return nil
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return &Latency{Samples: len(s), P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1]}
}

// Report is the outcome of Run.
type Report struct {
	// Target names the verified cluster, without credentials.
	Target string `json:"target"`
	// Checks are in the order they ran.
	Checks []Check `json:"checks"`
	// Latency covers every round-trip message of every vhost.
	Latency *Latency `json:"latency,omitempty"`
	// Differences are every way the target's definitions differ from the
	// plan's, as the definitions checks summarise them.
	Differences []definitions.Difference `json:"differences,omitempty"`
	// Passed, Warned, Failed and Skipped count the checks by status; a
	// warning is a pass.
	Passed  int `json:"passed"`
	Warned  int `json:"warned"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	// Duration is the wall time of the whole run.
	Duration time.Duration `json:"-"`
}

// OK reports whether no check failed.
func (r *Report) OK() bool { return r.Failed == 0 }

// Failures returns the failed checks.
func (r *Report) Failures() []Check { return r.with(Fail) }

func (r *Report) with(s Status) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == s {
			out = append(out, c)
		}
	}
	return out
}

// Area returns the checks of one area.
func (r *Report) Area(a Area) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Area == a {
			out = append(out, c)
		}
	}
	return out
}

// Err is nil when every check passed or was skipped, and otherwise an error
// naming each failed check.
func (r *Report) Err() error {
	f := r.Failures()
	if len(f) == 0 {
		return nil
	}
	names := make([]string, len(f))
	for i, c := range f {
		names[i] = c.Name
	}
	return fmt.Errorf("%w: %d of %d checks failed: %s", ErrFailed, len(f), len(r.Checks), strings.Join(names, "; "))
}

func (r *Report) add(c Check) {
	r.Checks = append(r.Checks, c)
	switch c.Status {
	case Pass:
		r.Passed++
	case Warn:
		r.Warned++
	case Fail:
		r.Failed++
	default:
		r.Skipped++
	}
	slog.Debug("verify check", "area", c.Area, "name", c.Name, "status", c.Status, "detail", c.Detail, "duration", c.Duration)
}

// Options say what to verify and how.
type Options struct {
	// Target is the cluster to verify: one AMQP URL per node and its HTTP API.
	Target broker.Endpoint
	// Source, when set, is the broker migrated from: the definitions check
	// compares against its export, and the routing check expects every one
	// of its bindings on the target.
	Source *broker.Endpoint
	// ServiceURL is the client Service's AMQP URL (e.g. a Kubernetes
	// Service in front of the nodes); it must accept logins too.
	// Credentials default to the target's. Empty: not checked.
	ServiceURL string
	// ServiceAPI is the HTTP API behind the client Service. Empty: not checked.
	ServiceAPI string
	// NodeAPIs are the HTTP APIs of individual nodes, so that every node's
	// API login is checked and not only Target.API's.
	NodeAPIs []string
	// ExpectNodes is how many nodes must be running; 0 means one per
	// Target AMQP URL.
	ExpectNodes int
	// Vhosts limits the round trips, routing, quorum queue and definitions
	// checks to these vhosts; empty means every vhost of the target.
	Vhosts []string
	// Messages is how many messages each node publishes per vhost in the
	// round trips (default 20).
	Messages int
	// Plan holds the choices the migration's definitions plan was made
	// with (queue types, mirroring policies, ...), so that the
	// definitions check expects what the import wrote.
	Plan definitions.Options
	// Want, when set, is what the target's definitions must be (a
	// migration's plan.Want()), used instead of exporting the source now:
	// a drain changes the source (an auto-delete queue goes with its
	// shovel), so the migration compares with the plan it imported.
	Want *definitions.Definitions
	// DrainReport holds the per-queue counts a drain recorded (see
	// LoadDrainReport); nil skips the conservation check.
	DrainReport []QueueCount
	// Areas selects the check areas to run; empty runs them all.
	Areas []Area
	// Wait bounds how long a probe may take to arrive (default 10s).
	Wait time.Duration
}

func (o *Options) defaults() error {
	if len(o.Target.AMQP) == 0 || o.Target.API == "" {
		return errors.New("verify: the target needs at least one AMQP URL and its HTTP API URL (--target-url, --target-api)")
	}
	if o.ExpectNodes < 0 {
		return fmt.Errorf("verify: expected node count %d: want 1 or more", o.ExpectNodes)
	}
	if o.ExpectNodes == 0 {
		o.ExpectNodes = len(o.Target.AMQP)
	}
	if o.Messages < 0 {
		return fmt.Errorf("verify: %d messages per node: want 1 or more", o.Messages)
	}
	if o.Messages == 0 {
		o.Messages = 20
	}
	if o.Wait <= 0 {
		o.Wait = 10 * time.Second
	}
	if len(o.Areas) == 0 {
		o.Areas = Areas
	}
	if err := validPlan(o.Plan); err != nil {
		return err
	}
	for _, a := range o.Areas {
		if _, err := ParseArea(string(a)); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	return nil
}

// session is one Run's state: options, clients and the report being built.
type session struct {
	opts    Options
	report  *Report
	target  *broker.API
	source  *broker.API
	vhosts  []string
	samples []time.Duration
	// probeID makes every object and message of this run recognisable.
	probeID string
}

// Run performs the selected checks against opts.Target and returns the
// report. Failing checks are part of the report, not errors: Run returns an
// error only for options it cannot work with (no target, an unreadable TLS
// file, an unknown area), before contacting any broker.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s := &session{opts: opts, report: &Report{Target: opts.Target.String()}, probeID: randomID()}
	var err error
	if s.target, err = opts.Target.NewAPI(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if _, err := opts.Target.TLS.Config(); err != nil {
		return nil, fmt.Errorf("verify: target TLS: %w", err)
	}
	if opts.Source != nil {
		if s.source, err = opts.Source.NewAPI(); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	service, err := s.serviceEndpoint()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	want := func(a Area) bool { return slices.Contains(opts.Areas, a) }
	if want(AreaHealth) {
		s.health(ctx, service)
	}
	if want(AreaRoundTrip) || want(AreaRouting) || want(AreaDefinitions) {
		s.resolveVhosts(ctx)
	}
	if want(AreaRoundTrip) {
		s.roundTrips(ctx)
	}
	if want(AreaRouting) {
		s.routing(ctx)
	}
	if want(AreaDefinitions) {
		s.definitions(ctx)
	}
	if want(AreaConservation) {
		s.conservation(ctx)
	}
	s.report.Latency = latencyOf(s.samples)
	s.report.Duration = time.Since(start)
	return s.report, nil
}

// outcome is what a check function returns; check adds name and timing.
type outcome struct {
	status Status
	detail string
}

func passf(format string, a ...any) outcome { return outcome{Pass, fmt.Sprintf(format, a...)} }
func failf(format string, a ...any) outcome { return outcome{Fail, fmt.Sprintf(format, a...)} }
func skipf(format string, a ...any) outcome { return outcome{Skip, fmt.Sprintf(format, a...)} }
func warnf(format string, a ...any) outcome { return outcome{Warn, fmt.Sprintf(format, a...)} }

// check times f and records its outcome. A cancelled context turns every
// remaining check into a failure that says so, rather than a silent gap.
func (s *session) check(ctx context.Context, area Area, name string, f func() outcome) {
	start := time.Now()
	var o outcome
	if err := ctx.Err(); err != nil {
		o = failf("not run: %v", err)
	} else {
		o = f()
	}
	s.report.add(Check{Area: area, Name: name, Status: o.status, Detail: o.detail, Duration: time.Since(start)})
}

// job is a check to run with parallel.
type job struct {
	name string
	f    func() outcome
}

// parallel runs independent checks at once and records them in order.
func (s *session) parallel(ctx context.Context, area Area, jobs []job) {
	checks := make([]Check, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			start := time.Now()
			o := failf("not run: %v", ctx.Err())
			if ctx.Err() == nil {
				o = j.f()
			}
			checks[i] = Check{Area: area, Name: j.name, Status: o.status, Detail: o.detail, Duration: time.Since(start)}
		})
	}
	wg.Wait()
	for _, c := range checks {
		s.report.add(c)
	}
}

// resolveVhosts fixes the vhosts the per-vhost checks cover.
func (s *session) resolveVhosts(ctx context.Context) {
	if len(s.opts.Vhosts) > 0 {
		s.vhosts = s.opts.Vhosts
		return
	}
	s.check(ctx, AreaHealth, "list vhosts", func() outcome {
		vhosts, err := s.target.ListVhosts(ctx)
		if err != nil {
			return failf("%v", err)
		}
		s.vhosts = vhosts
		return passf("%d vhosts: %s", len(s.vhosts), strings.Join(s.vhosts, ", "))
	})
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// limit joins at most n items, saying how many more there are, so that a
// detail stays readable when thousands of objects fail.
func limit(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:n], "; ") + fmt.Sprintf("; and %d more", len(items)-n)
}

// Prefix of every object verification creates, so that users, policies and
// the definitions check can tell them apart from their own.
const Prefix = "warren.verify."
