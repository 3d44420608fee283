package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/lab"
	"github.com/warrenmq/warren/lab/fixture"
)

func newLabCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run the local broker lab: a source node and a 3-node target cluster on 127.0.0.1",
		Long: `The lab runs Debian's rabbitmq-server (installed when missing) as one source
broker and a 3-node target cluster on 127.0.0.1, each with its own ports and
data directory under WARREN_LAB_DIR (default ~/.cache/warren/lab).

Ports: WARREN_LAB_SOURCE_AMQP_PORT (5700), WARREN_LAB_SOURCE_API_PORT (15700),
WARREN_LAB_TARGET_AMQP_PORT (5701, then 5702, 5703), WARREN_LAB_TARGET_API_PORT
(15701, ...). Distribution ports are the AMQP port + 20000.`,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "up",
			Short: "Install RabbitMQ if needed, start the lab nodes, wait until all are healthy",
			Args:  cobra.NoArgs,
			RunE: withLab(lab.Default, func(cmd *cobra.Command, _ []string, l *lab.Lab) error {
				start := time.Now()
				if err := l.Up(cmd.Context()); err != nil {
					return unavailable(err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "lab up in %s\n", time.Since(start).Round(100*time.Millisecond))
				return printLabStatus(cmd, g, l)
			}),
		},
		&cobra.Command{
			Use:   "down",
			Short: "Stop the lab's nodes (only those) and wait until their ports are free",
			Args:  cobra.NoArgs,
			RunE: withLab(lab.Default, func(cmd *cobra.Command, _ []string, l *lab.Lab) error {
				return l.Down(cmd.Context())
			}),
		},
		&cobra.Command{
			Use:   "status",
			Short: "Print each lab node, its ports and health; exit 1 unless all are running",
			Args:  cobra.NoArgs,
			RunE: withLab(lab.Default, func(cmd *cobra.Command, _ []string, l *lab.Lab) error {
				return printLabStatus(cmd, g, l)
			}),
		},
		newLabSeedCmd(g),
		&cobra.Command{
			Use:   "env",
			Short: "Print the WARREN_* variables that point warren at the lab (eval \"$(warren lab env)\")",
			Args:  cobra.NoArgs,
			RunE: withLab(lab.Default, func(cmd *cobra.Command, _ []string, l *lab.Lab) error {
				return printEnv(cmd, g, l.Endpoints())
			}),
		},
	)
	cmd.AddCommand(newLabK8sCmd(g))
	return cmd
}

func printLabStatus(cmd *cobra.Command, g *globals, l *lab.Lab) error {
	sts := l.Status(cmd.Context())
	if g.json() {
		if err := writeJSON(cmd.OutOrStdout(), sts); err != nil {
			return err
		}
	} else {
		w := table(cmd.OutOrStdout())
		fmt.Fprintln(w, "NODE\tERLANG NAME\tAMQP\tAPI\tDIST\tPID\tSTATE\tVERSION\tALARMS")
		for _, st := range sts {
			alarms := strings.Join(st.Alarms, ",")
			if alarms == "" {
				alarms = "none"
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", st.ID, st.Erlang, st.AMQPPort, st.APIPort, st.DistPort, st.PID, st.State, st.Version, alarms)
		}
		w.Flush()
	}
	var bad []string
	for _, st := range sts {
		if st.State != lab.Running {
			bad = append(bad, fmt.Sprintf("%s is %s", st.ID, st.State))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("lab not healthy: %s (run `warren lab up`)", strings.Join(bad, ", "))
	}
	return nil
}

func newLabSeedCmd(g *globals) *cobra.Command {
	var (
		prefix   string
		perQueue int
	)
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Give the lab's source a sample topology and a backlog of messages to migrate",
		Long: `seed builds the fixture topology (two vhosts with every exchange type,
bindings, dead-lettering, TTLs, priority and lazy queues, policies, users,
permissions, limits, a federation upstream) on the lab's source broker and
publishes --messages messages with varied properties into every queue.
Whatever an earlier seed with the same --prefix left on either side is
removed first, so every run starts a migration afresh.`,
		Args: cobra.NoArgs,
		RunE: withLab(lab.Default, func(cmd *cobra.Command, _ []string, l *lab.Lab) error {
			if !seedPrefix.MatchString(prefix) {
				return usagef("--prefix %q: use letters, digits, '.', '_' and '-', starting with a letter or digit (it names vhosts and users)", prefix)
			}
			if perQueue < 0 {
				return usagef("--messages %d: give 0 or more messages per queue", perQueue)
			}
			ctx := cmd.Context()
			src, err := l.SourceEndpoint().NewAPI()
			if err != nil {
				return err
			}
			dst, err := l.TargetEndpoint().NewAPI()
			if err != nil {
				return err
			}
			for _, api := range []*broker.API{src, dst} {
				if err := fixture.Remove(ctx, api, prefix); err != nil {
					return unavailable(fmt.Errorf("remove an earlier seed (is the lab up? warren lab up): %w", err))
				}
			}
			topo, err := fixture.Apply(ctx, src, prefix)
			if err != nil {
				return unavailable(err)
			}
			backlog, err := topo.PublishBacklog(ctx, l.SourceEndpoint(), perQueue)
			if err != nil {
				return unavailable(err)
			}
			counts := backlog.Count()
			if g.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"vhosts": topo.Vhosts, "queues": counts})
			}
			total := 0
			for _, n := range counts {
				total += n
			}
			fmt.Fprintf(cmd.OutOrStdout(), "seeded vhosts %s: %d queues, %d exchanges, %d bindings, %d users; %d messages queued\n",
				strings.Join(topo.Vhosts, ", "), len(topo.Queues), topo.Exchanges, topo.Bindings, len(topo.Users), total)
			return nil
		}),
	}
	cmd.Flags().StringVar(&prefix, "prefix", "demo", "prefix of the fixture's vhosts and users (a seed with the same prefix replaces it)")
	cmd.Flags().IntVar(&perQueue, "messages", 100, "messages per queue")
	return cmd
}

// withLab runs a lab command with the lab its environment configures; a bad
// setting (a port that is not a number, say) is a usage error.
func withLab[L any](load func() (L, error), run func(*cobra.Command, []string, L) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		l, err := load()
		if err != nil {
			return usage(err)
		}
		return run(cmd, args, l)
	}
}

// seedPrefix is what a fixture prefix may be: it names vhosts and users.
var seedPrefix = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
