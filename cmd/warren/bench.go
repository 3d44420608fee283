package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/warrenmq/warren/loadcheck"
)

func newBenchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load check: is the cluster at least as fast as the old broker, and does adding consumers help?",
		Long: `bench runs the same load against the source and then the target: for each
consumer count of --consumers, a round on a fresh queue of its own
(warren.bench.<random>, deleted afterwards, x-expires as a safety net) with
--producers producers publishing with confirms and that many consumers
acking by hand, through warren's resilient client (appclient), as the
services do.

Each round reports throughput (distinct messages consumed per second),
end-to-end latency p50/p95/p99 (each message carries its send time), the
consumer lag at the end (messages still queued), and the published,
confirmed and consumed counts. Then a comparison: the target's throughput
over the source's at each consumer count, and what adding consumers did on
each side.

It touches no queue but its own, and refuses a source whose vhost has other
clients connected (exit 3) unless --allow-live.`,
		Example: `  eval "$(warren lab env)"
  warren bench --consumers 1,3,5 --duration 20s
  warren bench --consumers 1,5 --count 50000 --size 4096 --rate 2000 -o json`,
		Args: cobra.NoArgs,
	}
	ep := addEndpointFlags(cmd, bothSides)
	fs := cmd.Flags()
	opts := loadcheck.Options{}
	fs.StringVar(&opts.Vhost, "vhost", "/", "vhost to run in, on both sides (it must exist)")
	fs.IntVar(&opts.Producers, "producers", 2, "producers, each on a connection of its own")
	consumers := fs.String("consumers", "1,3,5", "consumer counts, comma separated: each is one round per side")
	fs.IntVar(&opts.Size, "size", 1024, "message body size in bytes")
	fs.IntVar(&opts.Rate, "rate", 0, "messages per second in a round, over all producers; 0 publishes as fast as confirms allow")
	fs.DurationVar(&opts.Duration, "duration", 10*time.Second, "how long each round publishes (or give --count)")
	fs.IntVar(&opts.Count, "count", 0, "publish this many messages per round instead of for --duration")
	fs.StringVar(&opts.QueueType, "queue-type", "", "quorum or classic on both sides (default: quorum on the target, the vhost's default on the source)")
	fs.IntVar(&opts.InFlight, "in-flight", loadcheck.DefaultInFlight, "unconfirmed messages per producer")
	fs.IntVar(&opts.Prefetch, "prefetch", loadcheck.DefaultPrefetch, "each consumer's prefetch")
	fs.DurationVar(&opts.Work, "work", 0, "time a consumer spends on each message, standing for processing (e.g. 2ms)")
	fs.BoolVar(&opts.AllowLive, "allow-live", false, "run even though other clients are connected to the source's vhost")
	progress := fs.String("progress", "auto", "auto (bars on a terminal, log lines otherwise), bars, log or none")
	chart := fs.String("chart", "auto", "plot throughput by consumer count under the table: auto (on a terminal), always or never")

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		src, err := ep.source()
		if err != nil {
			return err
		}
		dst, err := ep.target()
		if err != nil {
			return err
		}
		opts.Source, opts.Target = src, dst
		switch {
		case fs.Changed("count") && opts.Count < 1:
			return usagef("--count %d: want 1 or more messages per round", opts.Count)
		case fs.Changed("duration") && opts.Duration <= 0:
			return usagef("--duration %s: want a positive duration, such as 10s", opts.Duration)
		case fs.Changed("count") && !fs.Changed("duration"):
			opts.Duration = 0 // --count replaces the default duration
		}
		if opts.Consumers, err = parseCounts(*consumers); err != nil {
			return usage(err)
		}
		// Zero means "the default" to the library: refuse an explicit one.
		for _, f := range []struct {
			name string
			v    int
		}{{"in-flight", opts.InFlight}, {"prefetch", opts.Prefetch}} {
			if f.v == 0 {
				return usagef("--%s 0: want 1 or more", f.name)
			}
		}
		if err := opts.Validate(); err != nil {
			return usage(err)
		}
		draw, color, err := chartMode(*chart, cmd.OutOrStdout())
		if err != nil {
			return err
		}
		if err := benchProgress(&opts, *progress, cmd.ErrOrStderr()); err != nil {
			return err
		}
		report, err := loadcheck.Run(cmd.Context(), opts)
		if report != nil {
			if perr := printBench(cmd.OutOrStdout(), g, report, draw, color); perr != nil && err == nil {
				err = perr
			}
		}
		return err
	}
	return cmd
}

// parseCounts reads a comma-separated list of consumer counts.
func parseCounts(list string) ([]int, error) {
	if strings.TrimSpace(list) == "" {
		return nil, errors.New("--consumers: an empty list; give counts such as 1,3,5")
	}
	var out []int
	for _, item := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(item))
		if err != nil {
			return nil, fmt.Errorf("--consumers %q: %q is not a count; give counts such as 1,3,5", list, item)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchProgress picks the progress display, as `warren drain` does.
func benchProgress(opts *loadcheck.Options, mode string, stderr io.Writer) error {
	if mode == "auto" {
		mode = "log"
		if isTerminal(stderr) {
			mode = "bars"
		}
	}
	switch mode {
	case "bars":
		bars := loadcheck.NewBars(stderr)
		logThrough(bars) // log lines print above the bars, not through them
		opts.Progress = bars
	case "log":
		opts.Progress = loadcheck.LogProgress{}
	case "none":
		opts.Progress = loadcheck.NoProgress{}
	default:
		return usagef("--progress %q: want auto, bars, log or none", mode)
	}
	return nil
}

// chartMode says whether to draw the chart, and in color.
func chartMode(mode string, stdout io.Writer) (draw, color bool, err error) {
	tty := isTerminal(stdout)
	switch mode {
	case "auto":
		return tty, tty, nil
	case "always":
		return true, tty, nil
	case "never":
		return false, false, nil
	}
	return false, false, usagef("--chart %q: want auto, always or never", mode)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printBench prints the report: JSON, or a table per round, the
// comparison, and the chart when asked for.
func printBench(w io.Writer, g *globals, r *loadcheck.Report, chart, color bool) error {
	if g.json() {
		return writeJSON(w, r)
	}
	if len(r.Rounds) == 0 {
		return nil
	}
	t := table(w)
	fmt.Fprintln(t, "SIDE\tQUEUE TYPE\tCONSUMERS\tPUBLISHED\tCONFIRMED\tCONSUMED\tMSG/S\tP50 MS\tP95 MS\tP99 MS\tLAG\tNOTE")
	for _, rd := range r.Rounds {
		note := rd.Error
		if rd.Duplicates > 0 {
			note = strings.TrimPrefix(note+fmt.Sprintf("; %d duplicate(s)", rd.Duplicates), "; ")
		}
		fmt.Fprintf(t, "%s\t%s\t%d\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t%d\t%s\n", rd.Side, rd.QueueType, rd.Consumers,
			rd.Published, rd.Confirmed, rd.Consumed, rd.Throughput,
			msText(rd.Latency.P50), msText(rd.Latency.P95), msText(rd.Latency.P99), rd.Lag, note)
	}
	t.Flush()
	s := r.Settings
	goal := fmt.Sprintf("%gs per round", s.Seconds)
	if s.Count > 0 {
		goal = fmt.Sprintf("%d messages per round", s.Count)
	}
	rate := "as fast as confirms allow"
	if s.Rate > 0 {
		rate = fmt.Sprintf("at most %d msg/s", s.Rate)
	}
	fmt.Fprintf(w, "%d producer(s), %d-byte messages, %s, %s, vhost %s\n", s.Producers, s.Size, goal, rate, s.Vhost)
	for _, c := range r.Comparison {
		verdict := "slower than the source"
		if c.AtLeastAsFast {
			verdict = "at least as fast as the source"
		}
		fmt.Fprintf(w, "%d consumer(s): the target moved %.2f× the source's messages per second (%.0f vs %.0f msg/s; p99 %.1f vs %.1f ms): %s\n",
			c.Consumers, c.Ratio, c.TargetThroughput, c.SourceThroughput, c.TargetP99MS, c.SourceP99MS, verdict)
	}
	for _, sc := range r.Scaling {
		fmt.Fprintf(w, "%s: %d → %d consumers changed throughput %.2f×\n", sc.Side, sc.From, sc.To, sc.Ratio)
	}
	if chart {
		if c := loadcheck.Chart(r, 60, color); c != "" {
			fmt.Fprintln(w)
			fmt.Fprint(w, c)
		}
	}
	return nil
}

// msText renders a latency in milliseconds, "-" when nothing was measured.
func msText(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000)
}
