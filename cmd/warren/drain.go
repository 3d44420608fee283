package main

import "github.com/spf13/cobra"

func newDrainCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drain",
		Short: "Move queued messages from the source into the target over dynamic shovels",
		Args:  cobra.NoArgs,
	}
	addEndpointFlags(cmd, bothSides)
	cmd.RunE = func(*cobra.Command, []string) error { return errNotYet("warren drain") }
	return cmd
}
