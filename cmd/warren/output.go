package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// writeJSON prints v as indented JSON, the --output json form of a report.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table returns a writer that aligns tab-separated columns; call Flush.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
}

// printEnv prints variables as shell export lines (for eval), or as JSON.
func printEnv(cmd *cobra.Command, g *globals, env map[string]string) error {
	if g.json() {
		return writeJSON(cmd.OutOrStdout(), env)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(cmd.OutOrStdout(), "export %s='%s'\n", k, env[k])
	}
	return nil
}
