package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warrenmq/warren/lab/k8s"
)

func newLabK8sCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "k8s",
		Short: "Run the local Kubernetes lab: a one-node cluster built from source, and a source broker container",
		Long: `The Kubernetes lab builds Kubernetes ` + k8s.KubernetesVersion + `, CoreDNS, crictl, a pause image and a
RabbitMQ image (` + k8s.RabbitMQImage + `, Debian's rabbitmq-server) into
WARREN_K8S_DIR (default ~/.cache/warren/k8s), then runs etcd, the control
plane, containerd, the kubelet, kube-proxy and CoreDNS as processes on this
machine, with pods on the bridge ` + k8s.Bridge + ` (` + k8s.PodCIDR + `, node ` + k8s.NodeIP + `).
Pods must use imagePullPolicy: Never; the default StorageClass is
` + k8s.StorageClass + `. Needs root. A cold build (Kubernetes, CoreDNS, the images) takes about 15 minutes on 2 cores.

	eval "$(warren lab k8s env)"   # KUBECONFIG and the source broker's URLs`,
	}
	cmd.AddCommand(
		newLabK8sBuildCmd(),
		&cobra.Command{
			Use:   "up",
			Short: "Build what is missing, start every daemon that is down, wait until the node is Ready",
			Args:  cobra.NoArgs,
			RunE: withLab(k8s.Default, func(cmd *cobra.Command, _ []string, l *k8s.Lab) error {
				start := time.Now()
				if err := l.Up(cmd.Context()); err != nil {
					return unavailable(err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "k8s lab up in %s; KUBECONFIG=%s\n", time.Since(start).Round(100*time.Millisecond), l.Kubeconfig())
				return printK8sStatus(cmd, g, l)
			}),
		},
		&cobra.Command{
			Use:   "down",
			Short: "Stop the lab and clean up: pods, daemons, iptables rules, mounts, the bridge, sysctls",
			Args:  cobra.NoArgs,
			RunE: withLab(k8s.Default, func(cmd *cobra.Command, _ []string, l *k8s.Lab) error {
				return l.Down(cmd.Context())
			}),
		},
		&cobra.Command{
			Use:   "status",
			Short: "Print each lab daemon, its pid, health and log; exit 1 unless all are running",
			Args:  cobra.NoArgs,
			RunE: withLab(k8s.Default, func(cmd *cobra.Command, _ []string, l *k8s.Lab) error {
				return printK8sStatus(cmd, g, l)
			}),
		},
		&cobra.Command{
			Use:   "env",
			Short: "Print KUBECONFIG and the source broker's WARREN_* variables (eval \"$(warren lab k8s env)\")",
			Args:  cobra.NoArgs,
			RunE: withLab(k8s.Default, func(cmd *cobra.Command, _ []string, l *k8s.Lab) error {
				return printEnv(cmd, g, l.Env())
			}),
		},
		&cobra.Command{
			Use:   "collect",
			Short: "Save daemon logs, pod logs, events and resources to the lab's failure directory and print it",
			Args:  cobra.NoArgs,
			RunE: withLab(k8s.Default, func(cmd *cobra.Command, _ []string, l *k8s.Lab) error {
				fmt.Fprintln(cmd.OutOrStdout(), l.CollectFailure(cmd.Context(), "warren lab k8s collect"))
				return nil
			}),
		},
		newLabK8sSourceCmd(),
	)
	return cmd
}

func newLabK8sBuildCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "build [" + strings.Join(k8s.BuildSteps, "|") + "]...",
		Short: "Install the Debian packages and build the binaries and images the lab needs (skips what is built)",
		RunE: withLab(k8s.Default, func(cmd *cobra.Command, args []string, l *k8s.Lab) error {
			for _, a := range args {
				if !slices.Contains(k8s.BuildSteps, a) {
					return usagef("no build step %q (want one of %s)", a, strings.Join(k8s.BuildSteps, ", "))
				}
			}
			start := time.Now()
			if err := l.Build(cmd.Context(), force, args...); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "k8s lab build done in %s (cache: %s)\n", time.Since(start).Round(100*time.Millisecond), l.Dir)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "rebuild even when the result is cached")
	return cmd
}

func newLabK8sSourceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "source",
		Short: "Run the source broker (the Docker broker's stand-in) as a container on the host network, AMQP 5672, API 15672",
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "up",
			Short: "Start the source container unless it runs; wait until it answers",
			Args:  cobra.NoArgs,
			RunE: withLab(k8s.Default, func(cmd *cobra.Command, _ []string, l *k8s.Lab) error {
				if err := l.SourceUp(cmd.Context()); err != nil {
					return unavailable(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "source broker %s up: %s\n", k8s.SourceNode, l.SourceEndpoint())
				return nil
			}),
		},
		&cobra.Command{
			Use:   "down",
			Short: "Stop and remove the source container (its data goes with it)",
			Args:  cobra.NoArgs,
			RunE: withLab(k8s.Default, func(cmd *cobra.Command, _ []string, l *k8s.Lab) error {
				return l.SourceDown(cmd.Context())
			}),
		},
	)
	return cmd
}

func printK8sStatus(cmd *cobra.Command, g *globals, l *k8s.Lab) error {
	sts := l.Status(cmd.Context())
	if g.json() {
		if err := writeJSON(cmd.OutOrStdout(), sts); err != nil {
			return err
		}
	} else {
		w := table(cmd.OutOrStdout())
		fmt.Fprintln(w, "COMPONENT\tSTATE\tPID\tLOG\tDETAIL")
		for _, st := range sts {
			pid := "-"
			if st.PID != 0 {
				pid = fmt.Sprint(st.PID)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", st.Name, st.State, pid, st.Log, k8sFirstLine(st.Detail))
		}
		// The source container is optional: shown, never a failure.
		src := l.SourceStatus(cmd.Context())
		fmt.Fprintf(w, "%s\t%s\t-\t%s\t%s\n", src.Name, src.State, src.Log, k8sFirstLine(src.Detail))
		w.Flush()
	}
	var bad []string
	for _, st := range sts {
		if st.State != k8s.Running {
			bad = append(bad, fmt.Sprintf("%s is %s", st.Name, st.State))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("k8s lab not healthy: %s (run `warren lab k8s up`)", strings.Join(bad, ", "))
	}
	return nil
}

func k8sFirstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
