package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/preflight"
)

// definitionsFlags are the flags of warren definitions export|plan|import.
type definitionsFlags struct {
	ep     *endpointFlags
	file   string
	vhosts []string
	out    string
	opts   definitions.Options
}

func newDefinitionsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "definitions",
		Short: "Export, plan and import broker definitions",
		Long: `Definitions are a broker's vhosts, users, permissions, policies, exchanges,
queues, bindings and parameters. export reads them from the source (or a
definitions file), plan shows how they would be transformed for the target
and checks them against it, import applies the plan. plan changes nothing;
import changes nothing unless every check passes.`,
	}
	cmd.AddCommand(newDefinitionsExportCmd(g), newDefinitionsPlanCmd(g), newDefinitionsImportCmd(g))
	return cmd
}

func addSourceFlags(cmd *cobra.Command, f *definitionsFlags) {
	fs := cmd.Flags()
	fs.StringVar(&f.file, "file", "", "read definitions from this file (- for stdin) instead of the source's HTTP API")
	fs.StringSliceVar(&f.vhosts, "vhost", nil, "only these vhosts; for a single-vhost file, the vhost to load it into")
}

func addPlanFlags(cmd *cobra.Command, f *definitionsFlags) {
	fs := cmd.Flags()
	o := &f.opts
	fs.StringVar(&o.QueueType, "queue-type", definitions.QueueTypeQuorum,
		"quorum: convert durable, non-exclusive, non-auto-delete classic queues to quorum queues; keep: keep every queue's type")
	fs.StringVar(&o.Incompatible, "incompatible", definitions.IncompatibleAbort,
		"queues with arguments quorum queues refuse (x-max-priority, x-queue-mode, ...): abort, keep-classic, or drop-arguments")
	fs.StringSliceVar(&o.KeepClassic, "keep-classic", nil, "keep these queues classic: vhost/queue patterns (* and ? allowed), repeatable")
	fs.StringVar(&o.Mirroring, "mirroring", definitions.MirroringKeep,
		"classic mirroring policies (ha-*): keep (and report), rewrite (remove the ha-* keys), or drop")
	fs.BoolVar(&o.KeepVhostDefaultQueueType, "keep-vhost-default-queue-type", false,
		"do not make quorum the default queue type of vhosts whose queues are converted")
	fs.BoolVar(&o.IncludeGuest, "include-guest", false, "carry the guest user and its permissions over")
	fs.BoolVar(&o.SkipConflicts, "skip-conflicts", false, "leave objects that conflict with the target as the target has them, and import the rest")
}

func newDefinitionsExportCmd(g *globals) *cobra.Command {
	f := &definitionsFlags{}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the source's definitions (or a file's) as a definitions document",
		Long: `Writes every definition of the source broker, or of --file, as the JSON
document the management UI and rabbitmqadmin read and write, to --out-file (or
stdout). A summary goes to stderr.`,
		Args: cobra.NoArgs,
	}
	f.ep = addEndpointFlags(cmd, sourceSide)
	addSourceFlags(cmd, f)
	cmd.Flags().StringVar(&f.out, "out-file", "-", "write the document to this file (- for stdout)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.refuseEmptyLists(cmd.Flags()); err != nil {
			return err
		}
		d, err := f.source(cmd.Context(), cmd.InOrStdin())
		if err != nil {
			return err
		}
		if f.out == "" || f.out == "-" {
			if err := writeJSON(cmd.OutOrStdout(), d); err != nil {
				return fmt.Errorf("write definitions: %w", err)
			}
		} else if err := writeFile(f.out, d); err != nil {
			return err
		}
		var parts []string
		for _, k := range definitions.Kinds {
			if n := len(d.Objects(k)); n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, k))
			}
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "exported %s\n", strings.Join(parts, ", "))
		return nil
	}
	return cmd
}

func newDefinitionsPlanCmd(g *globals) *cobra.Command {
	f := &definitionsFlags{}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show how the definitions would be transformed and how they stand against the target; change nothing",
		Long: `Transforms the source's definitions (or --file) for the target and prints every
change with its reason, then, when a target is given, checks the plan
against it: preflight (login, administrator, version, plugins) and, for each
object, whether the target lacks it (new), holds it identically, or holds it
otherwise (conflict). Nothing is changed on either side.

Exits 4 when queues need a decision (--incompatible, --keep-classic) or
objects conflict, 3 when the target is unreachable or unfit.`,
		Args: cobra.NoArgs,
	}
	f.ep = addEndpointFlags(cmd, bothSides)
	addSourceFlags(cmd, f)
	addPlanFlags(cmd, f)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		if err := f.refuseEmptyLists(cmd.Flags()); err != nil {
			return err
		}
		plan, err := f.plan(ctx, cmd.InOrStdin())
		if err != nil {
			return err
		}
		var chk *definitions.CheckResult
		var chkErr error
		if f.ep.targetURL != "" || f.ep.targetAPI != "" {
			tgt, err := f.ep.target()
			if err != nil {
				return err
			}
			api, err := tgt.NewAPI()
			if err != nil {
				return usage(err)
			}
			chk, chkErr = plan.Check(ctx, api)
			if chk == nil && chkErr != nil {
				return (chkErr)
			}
		}
		if g.json() {
			if err := writeJSON(cmd.OutOrStdout(), struct {
				Plan  *definitions.Plan        `json:"plan"`
				Check *definitions.CheckResult `json:"check"`
			}{plan, chk}); err != nil {
				return err
			}
		} else {
			printPlan(cmd.OutOrStdout(), plan)
			if chk != nil {
				printCheck(cmd.OutOrStdout(), chk, true)
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "\nNo target given (--target-url, --target-api): the plan was not checked against one.")
			}
		}
		if chkErr != nil {
			return (chkErr)
		}
		return (plan.Err())
	}
	return cmd
}

func newDefinitionsImportCmd(g *globals) *cobra.Command {
	f := &definitionsFlags{}
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Import the planned definitions into the target, then read them back",
		Long: `Runs plan and its checks, stops with nothing changed when any fails, then
creates the new objects in dependency order and reads the target back to
confirm each. Objects the target already holds identically are left alone,
so running import again changes nothing.`,
		Args: cobra.NoArgs,
	}
	f.ep = addEndpointFlags(cmd, bothSides)
	addSourceFlags(cmd, f)
	addPlanFlags(cmd, f)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		out := cmd.OutOrStdout()
		tgt, err := f.ep.target()
		if err != nil {
			return err
		}
		eps := []broker.Endpoint{tgt}
		var in inputs
		in.err(f.opts.Validate())
		f.checkLists(cmd.Flags(), &in)
		if err := in.stopIfScopeless(out, g); err != nil {
			return err
		}
		if f.file == "" {
			src, err := f.ep.source()
			if err != nil {
				return err
			}
			eps = append(eps, src)
		}
		var checks preflight.Report
		checks.Add(in.findings...)
		checks.Add(preflight.TLSFiles(tgt.TLS, preflight.UsesTLS(eps...))...)
		tside := preflight.Endpoint(ctx, tgt, preflight.Needs{Tag: "administrator", Why: "importing definitions", CountMismatch: preflight.Warn})
		checks.Add(tside.Findings...)
		if len(eps) > 1 {
			sside := preflight.Endpoint(ctx, eps[1], preflight.Needs{Tag: "administrator", Why: "exporting the source's definitions", CountMismatch: preflight.OK})
			checks.Add(sside.Findings...)
		}
		var (
			plan *definitions.Plan
			chk  *definitions.CheckResult
		)
		if f.opts.Validate() == nil {
			if plan, err = f.plan(ctx, cmd.InOrStdin()); err != nil {
				checks.Add(definitionsFinding(err))
			}
		}
		// A TLS file that does not load leaves no API to call: it is
		// among the findings (TLSFiles), and the table still reports
		// everything else.
		api, apiErr := tgt.NewAPI()
		if apiErr != nil && checks.Err() == nil {
			checks.Add(preflight.Failf(preflight.Usage, "target HTTP API", "%v", apiErr))
		}
		switch {
		case plan != nil && apiErr == nil && tside.Has("administrator"):
			cctx := ctx
			if checks.Err() != nil {
				cctx = definitions.WithoutStatsWait(ctx) // stopping anyway: no wait for lagging node figures
			}
			if chk, err = plan.Check(cctx, api); chk != nil {
				checks.Add(preflight.Plan(chk)...)
			} else {
				checks.Add(preflight.Failf(preflight.Unfit, "definitions", "check the plan against the target: %v", err))
			}
		case plan != nil:
			// The target cannot be read: what the file holds can still
			// be judged.
			for _, p := range definitions.Validate(plan.Want()) {
				checks.Add(preflight.Failf(preflight.Usage, "definitions: invalid", "%s", p))
			}
		}
		if checks.Err() != nil && !g.json() {
			if plan != nil {
				printPlan(out, plan)
				fmt.Fprintln(out)
			}
			if chk != nil {
				printCheck(out, chk, false)
				fmt.Fprintln(out)
			}
		}
		if err := stopOnPreflight(out, g, &checks, map[string]any{"plan": plan, "check": chk}); err != nil {
			return err
		}

		res, ierr := definitions.Import(ctx, api, plan)
		if g.json() {
			if err := writeJSON(out, struct {
				Plan      *definitions.Plan         `json:"plan"`
				Result    *definitions.ImportResult `json:"result"`
				Preflight *preflight.Report         `json:"preflight"`
			}{plan, res, &checks}); err != nil {
				return err
			}
		} else if res != nil && res.Check != nil {
			if ierr != nil && res.Total() == 0 && res.RolledBack == nil {
				printPlan(out, plan)
				printCheck(out, res.Check, true)
			} else {
				printImport(out, res)
			}
		}
		return ierr
	}
	return cmd
}

// definitionsFinding is a failure to read or plan the definitions.
func definitionsFinding(err error) preflight.Finding {
	switch definitions.ClassOf(err) {
	case definitions.ClassUsage:
		return preflight.Failf(preflight.Usage, "definitions", "%v", err)
	case definitions.ClassConflict:
		return preflight.Failf(preflight.Conflict, "definitions", "%v", err)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return preflight.Failf(preflight.Usage, "definitions", "%v", err)
	}
	return preflight.Failf(preflight.Unfit, "definitions", "%v", err)
}

// refuseEmptyLists is checkLists for the commands that change nothing:
// the first finding is a usage error.
func (f *definitionsFlags) refuseEmptyLists(fs *pflag.FlagSet) error {
	var in inputs
	f.checkLists(fs, &in)
	if len(in.findings) > 0 {
		return usagef("%s", in.findings[0].Detail)
	}
	return nil
}

// checkLists refuses list flags given explicitly as empty.
func (f *definitionsFlags) checkLists(fs *pflag.FlagSet, in *inputs) {
	in.nonEmpty(fs, "vhost", f.vhosts, "every vhost")
	in.nonEmpty(fs, "keep-classic", f.opts.KeepClassic, "none")
}

func writeFile(path string, d *definitions.Definitions) error {
	file, err := os.Create(path)
	if err != nil {
		return usagef("--out-file: %w", err)
	}
	if err := writeJSON(file, d); err != nil {
		file.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// source reads the definitions from --file or the source's HTTP API and
// keeps the --vhost ones.
func (f *definitionsFlags) source(ctx context.Context, stdin io.Reader) (*definitions.Definitions, error) {
	if f.file != "" {
		r := stdin
		if f.file != "-" {
			file, err := os.Open(f.file)
			if err != nil {
				return nil, usagef("--file: %w", err)
			}
			defer file.Close()
			r = file
		}
		one := ""
		if len(f.vhosts) == 1 {
			one = f.vhosts[0]
		}
		d, err := definitions.Load(r, one)
		if err != nil {
			return nil, (fmt.Errorf("%s: %w", f.file, err))
		}
		if len(f.vhosts) > 1 {
			return only(d, f.vhosts)
		}
		return d, nil
	}
	src, err := f.ep.source()
	if err != nil {
		return nil, err
	}
	api, err := src.NewAPI()
	if err != nil {
		return nil, usage(err)
	}
	d, err := definitions.Export(ctx, api)
	if err != nil {
		return nil, (err)
	}
	if len(f.vhosts) > 0 {
		return only(d, f.vhosts)
	}
	return d, nil
}

func only(d *definitions.Definitions, vhosts []string) (*definitions.Definitions, error) {
	for _, v := range vhosts {
		if _, ok := d.Find(definitions.KindVhost, v); !ok {
			return nil, usagef("--vhost %s: the source has no such vhost", v)
		}
	}
	return d.Only(vhosts...), nil
}

func (f *definitionsFlags) plan(ctx context.Context, stdin io.Reader) (*definitions.Plan, error) {
	if err := f.opts.Validate(); err != nil {
		return nil, (err)
	}
	d, err := f.source(ctx, stdin)
	if err != nil {
		return nil, err
	}
	p, err := definitions.NewPlan(d, f.opts)
	if err != nil {
		return nil, (err)
	}
	return p, nil
}

func printPlan(w io.Writer, p *definitions.Plan) {
	src := p.SourceVersion
	if src == "" {
		src = "unknown version"
	}
	total := 0
	for _, n := range p.Counts {
		total += n
	}
	fmt.Fprintf(w, "Plan: %d objects for the target (source RabbitMQ %s), %d changes\n", total, src, len(p.Changes))
	if len(p.Changes) == 0 {
		return
	}
	changes := slices.Clone(p.Changes)
	sort.SliceStable(changes, func(i, j int) bool {
		if a, b := kindOrder(string(changes[i].Kind)), kindOrder(string(changes[j].Kind)); a != b {
			return a < b
		}
		return changes[i].ID < changes[j].ID
	})
	t := table(w)
	fmt.Fprintln(t, "KIND\tOBJECT\tACTION\tDETAIL\tREASON")
	for _, c := range changes {
		action := string(c.Action)
		if c.Blocking {
			action = strings.ToUpper(action)
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\n", c.Kind, c.ID, action, dash(c.Detail), c.Reason)
	}
	t.Flush()
}

// printCheck prints the plan's check against the target: its preflight
// table (unless the command prints one preflight table of its own, with
// these findings in it), the objects per kind and status, and every
// conflict.
func printCheck(w io.Writer, r *definitions.CheckResult, withPreflight bool) {
	fmt.Fprintf(w, "\nTarget: RabbitMQ %s, cluster %s, user %s\n", r.Target.Version, dash(r.Target.ClusterName), r.Target.User)
	if withPreflight {
		printPreflight(w, &preflight.Report{Findings: preflight.Plan(r)}, true)
	} else {
		fmt.Fprintln(w)
	}
	t := table(w)
	fmt.Fprintln(t, "KIND\tNEW\tIDENTICAL\tCONFLICT\tSKIPPED")
	counts := map[definitions.Kind]map[definitions.Status]int{}
	for _, o := range r.Objects {
		if counts[o.Kind] == nil {
			counts[o.Kind] = map[definitions.Status]int{}
		}
		counts[o.Kind][o.Status]++
	}
	for _, k := range definitions.Kinds {
		if c := counts[k]; c != nil {
			fmt.Fprintf(t, "%s\t%d\t%d\t%d\t%d\n", k, c[definitions.StatusNew], c[definitions.StatusIdentical],
				c[definitions.StatusConflict], c[definitions.StatusSkipped])
		}
	}
	t.Flush()
	listed := func(o definitions.ObjectStatus) bool {
		return o.Status == definitions.StatusConflict || o.Status == definitions.StatusSkipped || len(o.Fields) > 0
	}
	if slices.ContainsFunc(r.Objects, listed) {
		fmt.Fprintln(w)
		t = table(w)
		fmt.Fprintln(t, "KIND\tOBJECT\tSTATUS\tDIFFERENCE (planned vs. target)")
		for _, o := range r.Objects {
			if !listed(o) {
				continue
			}
			var fs []string
			for _, f := range o.Fields {
				fs = append(fs, f.String())
			}
			status := string(o.Status)
			switch o.Status {
			case definitions.StatusConflict:
				status = "CONFLICT"
			case definitions.StatusIdentical:
				status = "identical (labels differ)"
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", o.Kind, o.ID, status, strings.Join(fs, "; "))
		}
		t.Flush()
	}
}

func printImport(w io.Writer, r *definitions.ImportResult) {
	if r.Total() > 0 {
		t := table(w)
		fmt.Fprintln(t, "KIND\tCREATED")
		for _, k := range definitions.Kinds {
			if n := r.Created[k]; n > 0 {
				fmt.Fprintf(t, "%s\t%d\n", k, n)
			}
		}
		t.Flush()
	}
	if rb := r.RolledBack; rb != nil {
		fmt.Fprintf(w, "import stopped part-way and was rolled back: removed %d object(s) this run had created\n", len(rb.Removed))
		for _, o := range rb.Removed {
			fmt.Fprintf(w, "  removed %s\n", o)
		}
		for _, o := range rb.Left {
			fmt.Fprintf(w, "  LEFT ON THE TARGET %s\n", o)
		}
		return
	}
	fmt.Fprintf(w, "created %d, left %d identical and %d skipped conflicts alone; confirmed %d planned objects on the target in %s\n",
		r.Total(), r.Identical, r.Skipped, r.Confirmed, r.Duration.Round(time.Millisecond))
	if r.Placement != nil {
		fmt.Fprintf(w, "queues: %s\n", r.Placement)
	}
}

func kindOrder(k string) int {
	for i, kk := range definitions.Kinds {
		if string(kk) == k {
			return i
		}
	}
	return len(definitions.Kinds)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
