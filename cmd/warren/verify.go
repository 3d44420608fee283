package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/migrate"
	"github.com/warrenmq/warren/preflight"
	"github.com/warrenmq/warren/verify"
)

func newVerifyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the target cluster: health, AMQP round trips, routing, definitions, message counts",
		Long: `Check the target cluster after deploy or after cutover, and report every check.

  health        AMQP and HTTP API login on every node (and the client Service),
                running node count, alarms, partitions, quorum queue members
  roundtrip     per vhost, messages published with confirms through each node
                into a warren-owned quorum queue and consumed through another
                node arrive byte for byte with every property (latency p50/p99)
  routing       every source binding exists on the target; bindings that can
                be exercised without a user queue receiving anything are
                exercised
  definitions   the target's definitions equal the source's after the plan made
                with the same choices (--queue-type, --mirroring, ...; after a
                warren migrate between the same brokers, its recorded choices
                and the auto-delete queues its drain removed are used)
  conservation  the counts a drain recorded (--drain-report) add up on the target

Users' messages are never touched. Exits 6 naming each failed check.`,
		Args: cobra.NoArgs,
	}
	ef := addEndpointFlags(cmd, bothSides)
	var (
		opts                   verify.Options
		serviceURL, serviceAPI string
		vhosts                 []string
		areas                  []string
		expectNodes, messages  int
		drainReport            string
	)
	fs := cmd.Flags()
	fs.StringVar(&serviceURL, "service-url", "", "client Service AMQP URL to check too (credentials default to the target's)")
	fs.StringVar(&serviceAPI, "service-api", "", "client Service HTTP API URL to check too")
	fs.IntVar(&expectNodes, "expect-nodes", 0, "number of nodes that must be running (default: one per --target-url)")
	fs.StringSliceVar(&vhosts, "vhost", nil, "vhosts to check, comma separated (default: every vhost of the target)")
	fs.IntVar(&messages, "messages", 20, "round-trip messages each node publishes per vhost")
	fs.StringVar(&drainReport, "drain-report", "", "the JSON report (`FILE`) of warren drain -o json, for the conservation check")
	// The definitions plan's choices, as the migration was made with them.
	fs.StringVar(&opts.Plan.QueueType, "queue-type", "", "definitions plan: quorum (default) or keep")
	fs.StringVar(&opts.Plan.Incompatible, "incompatible", "", "definitions plan: abort (default), keep-classic or drop-arguments")
	fs.StringSliceVar(&opts.Plan.KeepClassic, "keep-classic", nil, "definitions plan: vhost/queue patterns kept classic")
	fs.StringVar(&opts.Plan.Mirroring, "mirroring", "", "definitions plan: keep (default), rewrite or drop mirroring policies")
	fs.BoolVar(&opts.Plan.KeepVhostDefaultQueueType, "keep-vhost-default-queue-type", false, "definitions plan: the vhosts' default queue type was left alone")
	fs.BoolVar(&opts.Plan.IncludeGuest, "include-guest", false, "definitions plan: the guest user was carried over")
	addStateDirFlag(cmd)
	fs.StringSliceVar(&areas, "check", nil, "check areas to run, comma separated: health,roundtrip,routing,definitions,conservation (default: all)")

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		opts.ServiceURL, opts.ServiceAPI = serviceURL, serviceAPI
		opts.ExpectNodes, opts.Vhosts, opts.Messages = expectNodes, vhosts, messages
		var err error
		if opts.Target, err = ef.target(); err != nil {
			return err
		}
		// The source is optional: without it, the definitions check is
		// skipped and routing checks only the target's own bindings.
		if ef.sourceURL != "" || ef.sourceAPI != "" {
			src, err := ef.source()
			if err != nil {
				return err
			}
			opts.Source = &src
		}

		var in inputs
		in.intRange(fs, "expect-nodes", expectNodes, 1, 0, true, " (leave it out for one per --target-url)")
		in.intRange(fs, "messages", messages, 1, maxMessages, false, "")
		in.nonEmpty(fs, "vhost", vhosts, "every vhost of the target")
		in.nonEmpty(fs, "check", areas, "all of them")
		in.nonEmpty(fs, "node-api", ef.nodeAPIs, "none")
		in.nonEmpty(fs, "keep-classic", opts.Plan.KeepClassic, "none")
		in.err(opts.Plan.Validate())
		in.serviceURLs(serviceURL, serviceAPI)
		for _, a := range areas {
			area, err := verify.ParseArea(a)
			if err != nil {
				in.bad("--check: %v", err)
				continue
			}
			opts.Areas = append(opts.Areas, area)
		}
		if drainReport != "" {
			if opts.DrainReport, err = verify.LoadDrainReport(drainReport); err != nil {
				in.file("drain report", fmt.Errorf("--drain-report: %w", err))
			}
		}
		if err := in.stopIfScopeless(cmd.OutOrStdout(), g); err != nil {
			return err
		}
		var checks preflight.Report
		checks.Add(in.findings...)
		verifyPreflight(ctx, &checks, opts)
		if err := stopOnPreflight(cmd.OutOrStdout(), g, &checks, nil); err != nil {
			return err
		}
		if opts.Source != nil {
			if err := expectMigration(cmd, &opts); err != nil {
				return err
			}
		}
		report, err := verify.Run(cmd.Context(), opts)
		if err != nil {
			return usage(err)
		}
		out := cmd.OutOrStdout()
		if g.json() {
			if err := writeJSON(out, struct {
				*verify.Report
				Preflight *preflight.Report `json:"preflight"`
			}{report, &checks}); err != nil {
				return err
			}
		} else if err := printVerifyReport(out, report); err != nil {
			return err
		}
		return report.Err()
	}
	return cmd
}

// maxMessages bounds --messages: each node publishes that many per vhost
// and waits for every one.
const maxMessages = 100000

// verifyPreflight checks verify's inputs against the brokers: the TLS
// files, the tag its calls need (monitoring for node health, administrator
// for the definitions check), the target user's permissions in the vhosts
// it publishes in, and that the target URLs reach distinct nodes. A login
// that fails is no preflight failure here: the health check reports it.
func verifyPreflight(ctx context.Context, checks *preflight.Report, o verify.Options) {
	want := func(a verify.Area) bool { return len(o.Areas) == 0 || slices.Contains(o.Areas, a) }
	eps := []broker.Endpoint{o.Target}
	if o.Source != nil {
		eps = append(eps, *o.Source)
	}
	checks.Add(preflight.TLSFiles(o.Target.TLS, preflight.UsesTLS(eps...))...)
	tn := preflight.Needs{Tag: "monitoring", Why: "checking node health", Vhosts: o.Vhosts,
		CountMismatch: preflight.Warn, LoginFailure: preflight.Warn}
	if want(verify.AreaDefinitions) && o.Source != nil {
		tn.Tag, tn.Why = "administrator", "reading the target's definitions (--check definitions)"
	}
	if want(verify.AreaRoundTrip) || want(verify.AreaRouting) {
		tn.Configure, tn.Write, tn.Read = true, true, true
	}
	if o.Source == nil {
		checks.Add(preflight.Endpoint(ctx, o.Target, tn).Findings...)
		return
	}
	sn := preflight.Needs{Tag: "management", Why: "reading the source's bindings", LoginFailure: preflight.Warn, CountMismatch: preflight.OK}
	if want(verify.AreaDefinitions) {
		sn.Tag, sn.Why = "administrator", "exporting the source's definitions (--check definitions)"
	}
	t, src := preflight.Endpoints(ctx, o.Target, tn, *o.Source, sn)
	checks.Add(t.Findings...)
	checks.Add(src.Findings...)
}

// printVerifyReport prints a verification report as a table.
func printVerifyReport(out io.Writer, report *verify.Report) error {
	tw := table(out)
	fmt.Fprintln(tw, "STATUS\tCHECK\tTIME\tDETAIL")
	for _, c := range report.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strings.ToUpper(string(c.Status)), c.Name, c.Duration.Round(100*time.Microsecond), c.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%d checks: %d passed, %d failed, %d skipped", len(report.Checks), report.Passed, report.Failed, report.Skipped)
	if report.Latency != nil {
		fmt.Fprintf(out, "; round trips %s", report.Latency)
	}
	fmt.Fprintln(out)
	return nil
}

// planFlags are verify's flags that restate a migration's plan choices.
var planFlags = []string{"queue-type", "incompatible", "keep-classic", "mirroring", "keep-vhost-default-queue-type", "include-guest"}

// expectMigration makes the definitions check expect what `warren migrate`
// between the same source and target imported: the plan made from the
// source's export, the queues the migration's drain deleted from the source
// (auto-delete queues go with the shovel), and the choices the migration
// recorded unless plan flags are given here.
func expectMigration(cmd *cobra.Command, opts *verify.Options) error {
	path, err := statePath("", "migrate", *opts.Source, opts.Target)
	if err != nil {
		return usage(err)
	}
	var choices *definitions.Options
	for _, f := range planFlags {
		if cmd.Flags().Changed(f) {
			choices = &opts.Plan
		}
	}
	srcAPI, err := opts.Source.NewAPI()
	if err != nil {
		return usage(err)
	}
	if choices == nil {
		// Each vhost as its own migration planned it: a cutover in
		// batches may have made different choices per batch.
		want, found, err := migrate.Expected(cmd.Context(), srcAPI, path, opts.Vhosts)
		if definitions.ClassOf(err) == definitions.ClassConflict {
			return usagef("the recorded migration's plan does not apply; pass the choices the migration was made with (--incompatible, --keep-classic, ...): %w", err)
		}
		if err != nil {
			return fmt.Errorf("%w: plan the expected definitions: %w", verify.ErrFailed, err)
		}
		if found {
			slog.Info("expecting the definitions of the recorded migration", "state", path)
			opts.Want = want
			return nil
		}
		// The state is found by the URLs given: a migration made through
		// other URLs (another node's API, a port-forward) is not found.
		slog.Info("no migration recorded for this source and target URL pair: the source's export is planned with the choices given here",
			"state", path, "hint", "verify with the --source-api and --target-api the migration used, or pass its --incompatible/--keep-classic choices")
		return nil
	}
	plan, err := migrate.Planned(cmd.Context(), srcAPI, path, opts.Vhosts, choices)
	if err != nil {
		return fmt.Errorf("%w: plan the expected definitions: %w", verify.ErrFailed, err)
	}
	if err := plan.Err(); err != nil {
		return usagef("the plan does not apply as given; pass the choices the migration was made with (--incompatible, --keep-classic, ...): %w", err)
	}
	opts.Plan, opts.Want = plan.Options, plan.Want()
	return nil
}
