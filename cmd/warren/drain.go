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
	"golang.org/x/term"

	"github.com/warrenmq/warren/broker"
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
	fs.IntVar(&f.parallel, "parallel", 4, "queues drained at once")
	fs.IntVar(&f.prefetch, "prefetch", shovel.DefaultPrefetch, "messages each shovel may have in flight")
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

func (f *drainFlags) options(src, dst broker.Endpoint, stderr io.Writer) (shovel.Options, error) {
	side, err := shovel.ParseSide(f.side)
	if err != nil {
		return shovel.Options{}, withCode(exitUsage, err)
	}
	path, err := statePath(f.stateFile, "drain", src, dst)
	if err != nil {
		return shovel.Options{}, withCode(exitUsage, err)
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
	case "none":
		progress = shovel.NoProgress{}
	default:
		return shovel.Options{}, withCode(exitUsage, fmt.Errorf("--progress %q: want auto, bars, log or none", f.progress))
	}
	return shovel.Options{
		Source: src, Target: dst, Vhosts: f.vhosts, Side: side,
		ShovelSourceURL: f.shovelSourceURL, ShovelTargetURLs: f.shovelTargetURLs,
		Parallel: f.parallel, Prefetch: f.prefetch, AllowLive: f.allowLive, Settle: f.settle,
		StallTimeout: f.stallTimeout, StatePath: path, Progress: progress,
	}, nil
}

// drainError maps a drain failure to its exit code.
func drainError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, shovel.ErrLiveClients):
		return withCode(exitPreflight, err)
	case errors.Is(err, shovel.ErrInterrupted):
		return withCode(exitInterrupted, err)
	case errors.Is(err, shovel.ErrNotConserved):
		return withCode(exitDrain, err)
	}
	return withCode(exitPreflight, err)
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
	abort := cmd.Flags().Bool("abort", false, "remove warren's shovels on both sides and stop; messages stay where they are")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		src, err := ep.source()
		if err != nil {
			return err
		}
		dst, err := ep.target()
		if err != nil {
			return err
		}
		opts, err := df.options(src, dst, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		if *abort {
			removed, err := shovel.Abort(cmd.Context(), opts)
			if err != nil {
				return withCode(exitPreflight, err)
			}
			if g.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"removed": removed})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d shovel(s)\n", len(removed))
			for _, s := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s/%s on %s\n", s.Vhost, s.Name, s.Side)
			}
			return nil
		}
		report, err := shovel.Drain(cmd.Context(), opts)
		if report != nil {
			if perr := printDrainReport(cmd.OutOrStdout(), g, report); perr != nil && err == nil {
				err = perr
			}
		}
		return drainError(err)
	}
	return cmd
}

func printDrainReport(w io.Writer, g *globals, r *shovel.Report) error {
	if g.json() {
		return writeJSON(w, r)
	}
	if len(r.Queues) == 0 {
		fmt.Fprintln(w, "nothing to drain: every source queue is empty")
		return nil
	}
	t := table(w)
	fmt.Fprintln(t, "VHOST\tQUEUE\tSOURCE BEFORE\tTARGET BEFORE\tMOVED\tTARGET AFTER\tSTATUS\tSECONDS\tDETAIL")
	for _, q := range r.Queues {
		fmt.Fprintf(t, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%.1f\t%s\n", q.Vhost, q.Queue, q.SourceBefore, q.TargetBefore, q.Moved, q.TargetAfter, q.Status, q.Seconds, q.Detail)
	}
	t.Flush()
	fmt.Fprintf(w, "moved %d messages in %.1fs (%.0f msg/s); shovels ran on the %s side, %d queues at a time\n",
		r.Messages, r.Seconds, r.Rate, r.Side, r.Parallel)
	for _, s := range r.Skipped {
		fmt.Fprintln(w, "skipped:", s)
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
