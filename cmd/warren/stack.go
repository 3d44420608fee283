package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warrenmq/warren/stack"
)

// stackFlags are the flags every stack command shares.
type stackFlags struct {
	stack, projectDir, backend string
}

func (f *stackFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.stack, "stack", "s", "dev", "Pulumi stack (dev, prod, ...): its settings are Pulumi.<stack>.yaml")
	cmd.Flags().StringVar(&f.projectDir, "project-dir", "", "directory with Pulumi.yaml and the stack files (default: nearest one upwards)")
	cmd.Flags().StringVar(&f.backend, "backend", "", "Pulumi backend URL (default: file://~/.cache/warren/pulumi-state)")
}

func (f *stackFlags) options(progress io.Writer) stack.Options {
	return stack.Options{Stack: f.stack, ProjectDir: f.projectDir, Backend: f.backend, Progress: progress}
}

// progressOut is where Pulumi's progress goes: stdout for people, stderr
// when stdout carries the JSON report.
func progressOut(g *globals, cmd *cobra.Command) io.Writer {
	if g.json() {
		return cmd.ErrOrStderr()
	}
	return cmd.OutOrStdout()
}

func newStackCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{newInitCmd(g), newPreviewCmd(g), newUpCmd(g), newDestroyCmd(g), newRenderCmd(g)}
}

func newInitCmd(g *globals) *cobra.Command {
	var f stackFlags
	var tls bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the stack and fill its missing secrets (cookie, admin password, TLS)",
		Long: `init creates the stack in the backend when missing and writes the secrets it
lacks into Pulumi.<stack>.yaml, encrypted with PULUMI_CONFIG_PASSPHRASE: the
Erlang cookie, the admin password and, when TLS is on (warren:tlsEnabled or
--tls) and no existing Secret is named, a CA and a server certificate whose
names cover the client Service, the headless Service and every pod. Existing
values are kept, so running it again changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := stack.Init(cmd.Context(), f.options(cmd.ErrOrStderr()), stack.InitOptions{TLS: tls})
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "stack %s: settings in %s\n", res.Stack, res.SettingsFile)
			fmt.Fprintf(w, "generated: %s\n", listOrNone(res.Generated))
			fmt.Fprintf(w, "kept:      %s\n", listOrNone(res.Kept))
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&tls, "tls", false, "turn TLS on for the stack and generate a CA and server certificate")
	return cmd
}

func newPreviewCmd(g *globals) *cobra.Command {
	var f stackFlags
	cmd := &cobra.Command{
		Use:   "preview",
		Short: "Show what `warren up` would change",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := stack.Preview(cmd.Context(), f.options(progressOut(g, cmd)))
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stack %s: %s\n", res.Stack, formatChanges(res.Changes))
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newUpCmd(g *globals) *cobra.Command {
	var f stackFlags
	uo := stack.UpOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create or update the RabbitMQ cluster on Kubernetes, streaming progress",
		Long: `up creates or updates the cluster and waits until every pod is ready.

When the update restarted, added or removed pods (a changed setting rolls the
StatefulSet one pod at a time, and each stopping pod hands its quorum queue
leaders to the others), up then spreads the leaders again, as the RabbitMQ
Cluster Operator does after a rolling restart: once every node runs and every
quorum queue has all its members online, it calls POST /api/rebalance/queues
and prints the leaders per node before and after.

It reaches the cluster's HTTP API through --cluster-api when given, else the
client Service's DNS name (inside the cluster), its ClusterIP (on a cluster
node), or kubectl port-forward. When none works it says so and how to
rebalance by hand, and still succeeds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := stack.Up(cmd.Context(), f.options(progressOut(g, cmd)), uo)
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			return writeUpReport(cmd.OutOrStdout(), res)
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&uo.Rebalance, "rebalance", true, "after an update that changed the pods, spread quorum queue leaders over the nodes again")
	cmd.Flags().StringVar(&uo.ClusterAPI, "cluster-api", "", "the cluster's HTTP API as this machine reaches it, for the rebalance (default: found through the client Service or kubectl port-forward)")
	cmd.Flags().DurationVar(&uo.RebalanceTimeout, "rebalance-timeout", stack.DefaultRebalanceTimeout, "how long the rebalance waits for every node and quorum queue member, then for the leaders to move")
	return cmd
}

// writeUpReport prints the changes, every stack output, and where
// applications find their connection details.
func writeUpReport(w io.Writer, res *stack.UpResult) error {
	fmt.Fprintf(w, "stack %s: %s\n", res.Stack, formatChanges(res.Changes))
	keys := make([]string, 0, len(res.Outputs))
	for k := range res.Outputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := table(w)
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\n", k, res.Outputs[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if app, ns := res.Outputs["appSecretName"], res.Outputs["namespace"]; app != "" {
		fmt.Fprintf(w, "applications connect with Secret %s/%s (servicebinding.io/rabbitmq: host, port, username, password, vhost, uri): kubectl -n %s get secret %s -o jsonpath='{.data.uri}' | base64 -d\n",
			ns, app, ns, app)
	}
	return writeRebalance(w, res.Rebalance)
}

// writeRebalance prints what up did to spread quorum queue leaders: the
// leaders per node before and after, or why it did nothing.
func writeRebalance(w io.Writer, r *stack.Rebalance) error {
	if r == nil {
		return nil
	}
	switch {
	case r.Status == stack.RebalanceNotDone:
		fmt.Fprintf(w, "quorum leaders NOT rebalanced: %s\n  the cluster serves; to spread them by hand: %s\n", r.Reason, r.Manual)
		if r.Before != nil {
			fmt.Fprintf(w, "  leaders per node now: %s\n", stack.FormatLeaders(r.Before))
		}
		return nil
	case r.Before == nil || r.After == nil:
		fmt.Fprintf(w, "quorum leaders: not rebalanced: %s\n", r.Reason)
		return nil
	}
	verb := "rebalanced"
	if r.Status == stack.RebalanceSkipped {
		verb = "not rebalanced: " + r.Reason
	}
	fmt.Fprintf(w, "quorum leaders %s (%d quorum queues, through %s):\n", verb, r.Queues, r.API)
	nodes := make([]string, 0, len(r.Before))
	for n := range r.Before {
		nodes = append(nodes, n)
	}
	for n := range r.After {
		if _, ok := r.Before[n]; !ok {
			nodes = append(nodes, n)
		}
	}
	sort.Strings(nodes)
	tw := table(w)
	fmt.Fprintln(tw, "  NODE\tBEFORE\tAFTER")
	for _, n := range nodes {
		fmt.Fprintf(tw, "  %s\t%d\t%d\n", stack.ShortNode(n), r.Before[n], r.After[n])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Status == stack.RebalanceDone && r.Reason != "" {
		fmt.Fprintf(w, "  note: %s\n", r.Reason)
	}
	return nil
}

func newDestroyCmd(g *globals) *cobra.Command {
	var f stackFlags
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Delete the stack's Kubernetes objects (the stack and its secrets stay)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := stack.Destroy(cmd.Context(), f.options(progressOut(g, cmd)))
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stack %s: %s\n", res.Stack, formatChanges(res.Changes))
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newRenderCmd(g *globals) *cobra.Command {
	var f stackFlags
	var dir string
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Write the stack's Kubernetes manifests as YAML (Secrets in plain text!)",
		Long: `render writes the manifests the stack would apply into --dir, through the
Kubernetes provider's renderYamlToDirectory, without touching a cluster or the
stack's state. Secrets are written there in PLAIN TEXT: keep the directory out
of version control and delete it when done.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usagef("--dir is required: where to write the manifests")
			}
			res, err := stack.Render(cmd.Context(), f.options(progressOut(g, cmd)), dir)
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "stack %s: %d manifests in %s (Secrets are in plain text there)\n", res.Stack, len(res.Files), res.Dir)
			for _, file := range res.Files {
				fmt.Fprintf(w, "  %s\n", file)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write the manifests into (required; Secrets land there in plain text)")
	return cmd
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func formatChanges(c stack.Changes) string {
	if len(c) == 0 {
		return "no changes"
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
	}
	return strings.Join(parts, ", ")
}
