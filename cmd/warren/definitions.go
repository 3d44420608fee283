package main

import "github.com/spf13/cobra"

func newDefinitionsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "definitions",
		Short: "Export, plan and import broker definitions",
	}
	for _, name := range []string{"export", "plan", "import"} {
		sub := &cobra.Command{Use: name, Args: cobra.NoArgs}
		addEndpointFlags(sub, bothSides)
		sub.RunE = func(*cobra.Command, []string) error { return errNotYet("warren definitions " + name) }
		cmd.AddCommand(sub)
	}
	return cmd
}
