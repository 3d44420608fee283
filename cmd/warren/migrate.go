package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/warrenmq/warren/migrate"
)

func newMigrateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Run the whole cutover: preflight, definitions, drain, verify, clean up",
		Long: `migrate moves a source broker into the target cluster in one command:

  preflight    both brokers reachable, versions, shovel plugin, alarms, disk and
               memory headroom on every target node for the backlog
  definitions  export the source, plan (classic to quorum, ...), check against
               the target, import; conflicts or incompatible arguments stop here
               with nothing changed
  drain        move every queued message over dynamic shovels (see warren drain)
  verify       health, round trips, routing, definitions equality, conservation
  cleanup      remove any shovel of warren's that is left

Run it again at any time: after a kill it resumes (the drain keeps its state,
the import creates only what is missing), after success it finds nothing to do.
--dry-run shows the plan, its check against the target and the backlog, and
changes nothing. Exit codes: 3 preflight, 4 plan conflict, 5 drain, 6 verify.`,
		Args: cobra.NoArgs,
	}
	ep := addEndpointFlags(cmd, bothSides)
	df := &definitionsFlags{}
	addPlanFlags(cmd, df)
	drain := addDrainFlags(cmd)
	var opts migrate.Options
	fs := cmd.Flags()
	fs.BoolVar(&opts.DryRun, "dry-run", false, "show what would happen; change nothing")
	fs.BoolVar(&opts.SkipVerify, "skip-verify", false, "do not run the verification phase")
	fs.BoolVar(&opts.Live, "live", false, "cut over while the applications run: definitions, then (consumers moved) shovels that follow the producers until they move too; see README, Live cutover")
	fs.StringVar(&opts.Verify.ServiceURL, "service-url", "", "verify: client Service AMQP URL to check too")
	fs.StringVar(&opts.Verify.ServiceAPI, "service-api", "", "verify: client Service HTTP API URL to check too")
	fs.IntVar(&opts.Verify.ExpectNodes, "expect-nodes", 0, "verify: nodes that must be running (default: one per --target-url)")

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		src, err := ep.source()
		if err != nil {
			return err
		}
		dst, err := ep.target()
		if err != nil {
			return err
		}
		if err := df.opts.Validate(); err != nil {
			return usage(err)
		}
		if err := drain.validate(cmd.Flags()); err != nil {
			return err
		}
		if opts.Drain, err = drain.options(src, dst, cmd.ErrOrStderr()); err != nil {
			return err
		}
		if opts.StatePath, err = statePath("", "migrate", src, dst); err != nil {
			return usage(err)
		}
		opts.Source, opts.Target, opts.Vhosts, opts.Plan = src, dst, drain.vhosts, df.opts

		sum, err := migrate.Run(cmd.Context(), opts)
		if sum != nil {
			if perr := printMigration(cmd.OutOrStdout(), g, sum); perr != nil && err == nil {
				err = perr
			}
		}
		return err
	}
	return cmd
}

func printMigration(w io.Writer, g *globals, s *migrate.Summary) error {
	if g.json() {
		return writeJSON(w, s)
	}
	if s.Plan != nil && (s.DryRun || s.Check == nil || s.Check.Err() != nil) {
		printPlan(w, s.Plan)
		fmt.Fprintln(w)
	}
	if s.Check != nil && (s.DryRun || s.Check.Err() != nil) {
		printCheck(w, s.Check)
		fmt.Fprintln(w)
	}
	if s.DryRun && len(s.Backlog) > 0 {
		t := table(w)
		fmt.Fprintln(t, "VHOST\tQUEUE\tMESSAGES\tBYTES")
		for _, q := range s.Backlog {
			fmt.Fprintf(t, "%s\t%s\t%d\t%d\n", q.Vhost, q.Queue, q.Messages, q.Bytes)
		}
		t.Flush()
		fmt.Fprintln(w)
	}
	if s.Drain != nil && len(s.Drain.Queues) > 0 {
		if err := printDrainReport(w, g, s.Drain); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if s.Verify != nil {
		if err := printVerifyReport(w, s.Verify); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	t := table(w)
	fmt.Fprintln(t, "PHASE\tSTATUS\tSECONDS\tDETAIL")
	for _, p := range s.Phases {
		fmt.Fprintf(t, "%s\t%s\t%.1f\t%s\n", p.Phase, p.Status, p.Seconds, p.Detail)
	}
	t.Flush()
	verdict := "migration complete"
	switch {
	case s.DryRun:
		verdict = "dry run: nothing changed"
	case len(s.Phases) > 0 && s.Phases[len(s.Phases)-1].Status == "waiting":
		verdict = "live cutover waiting for you"
	case len(s.Phases) == 0 || s.Phases[len(s.Phases)-1].Status == "failed":
		verdict = "migration stopped; fix the cause and run the same command again"
	}
	fmt.Fprintf(w, "%s in %.1fs\n", verdict, s.Seconds)
	if s.Next != "" {
		fmt.Fprintln(w, "next:", s.Next)
	}
	return nil
}
