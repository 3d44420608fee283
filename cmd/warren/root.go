package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// globals are the flags every command has.
type globals struct {
	output  string
	verbose bool
}

func (g *globals) json() bool { return g.output == "json" }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "warren",
		Short: "Move a RabbitMQ broker into a highly available cluster on Kubernetes",
		Long: `warren provisions a RabbitMQ cluster on Kubernetes with Pulumi, migrates a
running broker's definitions and messages into it, and verifies the result.

Every flag can also be set through an environment variable: --source-url is
WARREN_SOURCE_URL, --output is WARREN_OUTPUT, and so on.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return usage(err)
			}
			if g.output != "text" && g.output != "json" {
				return usagef("--output %q: want text or json", g.output)
			}
			level := slog.LevelInfo
			if g.verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "report format: text or json")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log debug detail")
	root.AddCommand(
		newLabCmd(g),
		newMigrateCmd(g),
		newDefinitionsCmd(g),
		newDrainCmd(g),
		newVerifyCmd(g),
		newBenchCmd(g),
	)
	root.AddCommand(newStackCmds(g)...)
	usageOnArgs(root)
	return root
}

// bindEnv sets every flag the user did not give from WARREN_<FLAG_NAME>.
func bindEnv(flags *pflag.FlagSet) error {
	var errs []error
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		key := envName(f.Name)
		if v, ok := os.LookupEnv(key); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func envName(flag string) string {
	return "WARREN_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "warren:", err)
	return exitCode(err)
}
