package main

import "github.com/spf13/cobra"

func newVerifyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the target cluster: health, AMQP round trips, definitions, message counts",
		Args:  cobra.NoArgs,
	}
	addEndpointFlags(cmd, bothSides)
	cmd.RunE = func(*cobra.Command, []string) error { return errNotYet("warren verify") }
	return cmd
}
