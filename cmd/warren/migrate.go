package main

import "github.com/spf13/cobra"

func newMigrateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Run the whole cutover: preflight, definitions, drain, verify, clean up",
		Args:  cobra.NoArgs,
	}
	addEndpointFlags(cmd, bothSides)
	cmd.RunE = func(*cobra.Command, []string) error { return errNotYet("warren migrate") }
	return cmd
}
