package main

import "github.com/spf13/cobra"

func newStackCmds(g *globals) []*cobra.Command {
	var cmds []*cobra.Command
	for _, name := range []string{"init", "up", "preview", "destroy", "render"} {
		cmd := &cobra.Command{Use: name, Short: "Pulumi stack: " + name, Args: cobra.NoArgs}
		var stack string
		cmd.Flags().StringVarP(&stack, "stack", "s", "dev", "Pulumi stack (dev, prod, ...)")
		cmd.RunE = func(*cobra.Command, []string) error { return errNotYet("warren " + name) }
		cmds = append(cmds, cmd)
	}
	return cmds
}
