package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/preflight"
	"github.com/warrenmq/warren/shovel"
)

// drainFlags are the drain's settings, shared by `warren drain` and
// `warren migrate`.
type drainFlags struct {
	vhosts           []string
	side             string
	shovelSourceURL  string
	shovelTargetURLs []string
	parallel         int
	prefetch         int
	allowLive        bool
	settle           time.Duration
	stallTimeout     time.Duration
	stateFile        string
	progress         string
}

func addDrainFlags(cmd *cobra.Command) *drainFlags {
	f := &drainFlags{}
	fs := cmd.Flags()
	fs.StringSliceVar(&f.vhosts, "vhost", nil, "only these vhosts (repeat or comma separate); all when not given")
	fs.StringVar(&f.side, "shovel-side", "auto", "where shovels run: target (default for auto: spreads work over the cluster, local publish) or source")
	fs.StringVar(&f.shovelSourceURL, "shovel-source-url", "", "how the shovels reach the source, when it differs from --source-url (e.g. from inside Kubernetes)")
	fs.StringSliceVar(&f.shovelTargetURLs, "shovel-target-url", nil, "how shovels on the source reach the target, when it differs from --target-url")
	fs.IntVar(&f.parallel, "parallel", 0, fmt.Sprintf("queues drained at once (default: %d per node that runs shovels)", shovel.ParallelPerNode))
	fs.IntVar(&f.prefetch, "prefetch", shovel.DefaultPrefetch, "messages each shovel may have in flight: more is faster, and is what one shovel restart can duplicate")
	fs.BoolVar(&f.allowLive, "allow-live", false, "drain even though clients are attached to the source; each queue must then stay empty for --settle")
	fs.DurationVar(&f.settle, "settle", 10*time.Second, "with --allow-live: how long a source queue must stay empty")
	fs.DurationVar(&f.stallTimeout, "stall-timeout", 2*time.Minute, "fail a queue whose counts stop moving this long (its shovel keeps running)")
	fs.StringVar(&f.stateFile, "state-file", "", "the drain's resume file (default: one per source/target pair in --state-dir)")
	addStateDirFlag(cmd)
	fs.StringVar(&f.progress, "progress", "auto", "auto (bars on a terminal, log lines otherwise), bars, log or none")
	return f
}

// stateDir is where warren keeps resume state: --state-dir (WARREN_STATE_DIR)
// or the user's cache directory.
var stateDir string

func addStateDirFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "where migration and drain state is kept (default: warren/state in the user's cache directory)")
}

// statePath is where a migration between src and dst keeps its state:
// one file per pair and kind, so a rerun of the same command finds it.
func statePath(explicit, kind string, src, dst broker.Endpoint) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	dir := stateDir
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("find a state directory (give --state-dir): %w", err)
		}
		dir = filepath.Join(cache, "warren", "state")
	}
	sum := sha256.Sum256([]byte(src.API + "|" + dst.API))
	return filepath.Join(dir, kind+"-"+hex.EncodeToString(sum[:6])+".json"), nil
}

// maxPrefetch is the largest prefetch count AMQP 0-9-1 can carry (a
// 16-bit field): a shovel asked for more never starts.
const maxPrefetch = 65535

// check refuses flag values out of range; an explicit --parallel 0 or
// an empty --vhost is refused too (left out, they mean "sized to the cluster"
// and "every vhost").
func (f *drainFlags) check(fs *pflag.FlagSet, in *inputs) {
	in.intRange(fs, "parallel", f.parallel, 1, 1000, true, " (leave it out to size it to the cluster)")
	in.intRange(fs, "prefetch", f.prefetch, 1, maxPrefetch, false, " (AMQP's prefetch count is 16 bits)")
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"settle", f.settle}, {"stall-timeout", f.stallTimeout}} {
		if d.v <= 0 {
			in.bad("--%s %s: want a positive duration", d.name, d.v)
		}
	}
	in.nonEmpty(fs, "vhost", f.vhosts, "all of them")
	in.nonEmpty(fs, "shovel-target-url", f.shovelTargetURLs, "the --target-url ones")
	if _, err := shovel.ParseSide(f.side); err != nil {
		in.bad("--shovel-side: %v", err)
	}
	switch f.progress {
	case "auto", "bars", "log", "none":
	default:
		in.bad("--progress %q: want auto, bars, log or none", f.progress)
	}
}

func (f *drainFlags) options(src, dst broker.Endpoint, stderr io.Writer) (shovel.Options, error) {
	side, _ := shovel.ParseSide(f.side) // check refused a bad one
	path, err := statePath(f.stateFile, "drain", src, dst)
	if err != nil {
		return shovel.Options{}, usage(err)
	}
	mode := f.progress
	if mode == "auto" {
		mode = "log"
		if fd, ok := stderr.(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
			mode = "bars"
		}
	}
	var progress shovel.Progress
	switch mode {
	case "bars":
		bars := shovel.NewBars(stderr)
		logThrough(bars) // log lines print above the bars, not through them
		progress = bars
	case "log":
		progress = shovel.LogProgress{}
	default: // none, and a bad value check refused
		progress = shovel.NoProgress{}
	}
	return shovel.Options{
		Source: src, Target: dst, Vhosts: f.vhosts, Side: side,
		ShovelSourceURL: f.shovelSourceURL, ShovelTargetURLs: f.shovelTargetURLs,
		Parallel: f.parallel, Prefetch: f.prefetch, AllowLive: f.allowLive, Settle: f.settle,
		StallTimeout: f.stallTimeout, StatePath: path, Progress: progress,
	}, nil
}

func newDrainCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drain",
		Short: "Move queued messages from the source into the target over dynamic shovels",
		Long: `drain moves every message still queued on the source into the same queue on
the target, which must already exist (warren definitions import). One dynamic
shovel per non-empty queue, ack-mode on-confirm: a message leaves the source
only once the target has confirmed it. A queue is done when the source has no
ready and no unacknowledged messages and all of them have arrived; then its
shovel is removed and the counts are checked.

Killed half-way, the same command resumes and still checks the counts of the
first run. --abort removes warren's shovels and leaves every message where it
is.`,
		Args: cobra.NoArgs,
	}
	ep := addEndpointFlags(cmd, bothSides)
	df := addDrainFlags(cmd)
	abort := cmd.Flags().Bool("abort", false, "remove warren's shovels on both sides and stop; messages stay where they are, the counts are kept for the next drain")
	forget := cmd.Flags().Bool("forget", false, "with --abort: also forget the drain's counts, so that the next drain counts afresh (duplicates the abort caused then go unreported)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		src, err := ep.source()
		if err != nil {
			return err
		}
		dst, err := ep.target()
		if err != nil {
			return err
		}
		var in inputs
		df.check(cmd.Flags(), &in)
		if *forget && !*abort {
			in.bad("--forget goes with --abort")
		}
		if err := in.stopIfScopeless(cmd.OutOrStdout(), g); err != nil {
			return err
		}
		opts, err := df.options(src, dst, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		var checks preflight.Report
		checks.Add(in.findings...)
		checks.Add(preflight.TLSFiles(src.TLS, preflight.UsesTLS(src, dst))...)
		out := cmd.OutOrStdout()
		if *abort {
			// --abort is the way out of a drain gone wrong: it checks its
			// flags only, and then does what it can.
			if err := stopOnPreflight(out, g, &checks, nil); err != nil {
				return err
			}
			results, err := shovel.Abort(cmd.Context(), opts, *forget)
			if perr := printAbort(out, g, results); perr != nil && err == nil {
				err = perr
			}
			return err
		}
		drainPreflight(cmd.Context(), &checks, opts)
		if err := stopOnPreflight(out, g, &checks, nil); err != nil {
			return err
		}
		report, err := shovel.Drain(cmd.Context(), opts)
		if report != nil {
			var perr error
			if g.json() {
				// The report warren verify --drain-report reads, with the
				// preflight's findings beside it.
				perr = writeJSON(out, struct {
					*shovel.Report
					Preflight *preflight.Report `json:"preflight"`
				}{report, &checks})
			} else {
				perr = printDrainReport(out, g, report)
			}
			if perr != nil && err == nil {
				err = perr
			}
		}
		return err
	}
	return cmd
}

// drainPreflight checks what a drain needs before it moves anything: both
// logins (the source's may see every client, monitoring; the side that
// runs shovels declares them, administrator), the users' permissions, the
// target URLs one per running node, two distinct brokers, the vhosts, and
// no client still attached (unless --allow-live). The drain checks its
// queues (a destination for each, limits that would drop messages) itself,
// also before anything moves.
func drainPreflight(ctx context.Context, checks *preflight.Report, o shovel.Options) {
	side, err := shovel.ParseSide(string(o.Side))
	if err != nil {
		return // a flag finding already
	}
	srcNeeds := preflight.Needs{Tag: "monitoring", Why: "seeing every client attached to the source", Vhosts: o.Vhosts, Read: true, CountMismatch: preflight.OK}
	dstNeeds := preflight.Needs{Tag: "administrator", Why: "declaring the shovels on the target", Vhosts: o.Vhosts, Write: true, CountMismatch: preflight.Fail}
	if side == shovel.OnSource {
		srcNeeds.Tag, srcNeeds.Why = "administrator", "declaring the shovels on the source"
		dstNeeds.Tag, dstNeeds.Why = "monitoring", "reading the target's queues and nodes"
	}
	src, dst := preflight.Endpoints(ctx, o.Source, srcNeeds, o.Target, dstNeeds)
	checks.Add(src.Findings...)
	checks.Add(dst.Findings...)
	if !src.Has(srcNeeds.Tag) || !dst.Has(dstNeeds.Tag) {
		return // every other check reads the brokers through these logins
	}
	srcAPI, err1 := o.Source.NewAPI()
	dstAPI, err2 := o.Target.NewAPI()
	if err1 != nil || err2 != nil {
		return // TLS files: reported
	}
	if err := broker.CheckDistinct(ctx, srcAPI, dstAPI); errors.Is(err, broker.ErrSameBroker) {
		checks.Add(preflight.Failf(preflight.Usage, "source and target", "%v", err))
		return
	}
	if err := srcAPI.CheckVhosts(ctx, o.Vhosts); err != nil {
		checks.Add(preflight.Failf(preflight.Usage, "vhosts", "--vhost: %v", err))
		return
	}
	if err := o.Validate(); err != nil {
		// The flags' findings say the same in the flags' terms; this
		// catches only what they do not.
		if len(checks.Failed()) == 0 {
			checks.Add(preflight.Failf(preflight.Usage, "flags", "%v", err))
		}
		return
	}
	switch err := shovel.CheckLive(ctx, o); {
	case errors.Is(err, shovel.ErrLiveClients):
		checks.Add(preflight.Failf(preflight.Unfit, "live clients", "%v", err))
	case err != nil:
		checks.Add(preflight.Failf(preflight.Unfit, "live clients", "%v", err))
	}
}

// printDrainReport prints a drain's report as a table (callers write the
// JSON form themselves, with what goes with it).
func printDrainReport(w io.Writer, g *globals, r *shovel.Report) error {
	if len(r.Queues) == 0 {
		fmt.Fprintln(w, "nothing to drain: every source queue is empty")
		return nil
	}
	t := table(w)
	fmt.Fprintln(t, "VHOST\tQUEUE\tSOURCE BEFORE\tTARGET BEFORE\tMOVED\tDUPLICATES\tBOUND\tLOST\tNODE\tSTATUS\tSECONDS\tDETAIL")
	for _, q := range r.Queues {
		status := q.Status
		if q.Carried {
			status += " (earlier run)"
		}
		fmt.Fprintf(t, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%.1f\t%s\n", q.Vhost, q.Queue, q.SourceBefore, q.TargetBefore, q.Moved,
			q.Duplicates, q.DuplicateBound, q.Lost, q.Node, status, q.Seconds, q.Detail)
	}
	t.Flush()
	fmt.Fprintf(w, "moved %d messages in this run in %.1fs (%.0f msg/s); shovels ran on the %s side, %d queues at a time\n",
		r.Messages, r.Seconds, r.Rate, r.Side, r.Parallel)
	if r.Duplicates > 0 || r.Lost > 0 {
		fmt.Fprintf(w, "%d duplicates (each queue's within its bound unless it failed), %d lost\n", r.Duplicates, r.Lost)
	}
	for _, p := range r.Placement {
		fmt.Fprintln(w, "placement:", p)
	}
	for _, p := range r.Pauses {
		fmt.Fprintln(w, "alarm:", p)
	}
	for _, s := range r.Skipped {
		fmt.Fprintln(w, "skipped:", s)
	}
	return nil
}

// printAbort lists what --abort found and did.
func printAbort(w io.Writer, g *globals, results []shovel.AbortResult) error {
	if g.json() {
		return writeJSON(w, map[string]any{"shovels": results})
	}
	removed := 0
	for _, r := range results {
		if r.Removed {
			removed++
		}
	}
	fmt.Fprintf(w, "removed %d of %d shovel(s)\n", removed, len(results))
	for _, r := range results {
		what := "removed"
		if !r.Removed {
			what = "NOT removed: " + r.Error
		}
		ghost := ""
		if r.Ghost {
			ghost = " (stale status, no parameter)"
		}
		fmt.Fprintf(w, "  %s/%s on the %s%s: %s\n", r.Vhost, r.Name, r.Side, ghost, what)
	}
	return nil
}

// logThrough sends warren's log lines to w, at the level already chosen.
func logThrough(w io.Writer) {
	level := slog.LevelInfo
	if slog.Default().Enabled(context.Background(), slog.LevelDebug) {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})))
}
