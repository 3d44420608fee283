package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/pflag"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/preflight"
)

// inputs collects what a command finds wrong with its flags and files,
// as usage findings for the command's one preflight table, instead of
// stopping at the first.
type inputs struct {
	findings []preflight.Finding
	// scopeless is set when --vhost is unusable: every check of the
	// brokers depends on which vhosts are in scope, so none is run.
	scopeless bool
}

// bad records a usage failure about the inputs.
func (in *inputs) bad(format string, a ...any) {
	in.findings = append(in.findings, preflight.Failf(preflight.Usage, "flags", format, a...))
}

// err records err, when not nil, as a usage failure about the inputs;
// each line of a joined error is its own finding.
func (in *inputs) err(err error) {
	if err == nil {
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			in.bad("%s", line)
		}
	}
}

// file records a problem with an input file.
func (in *inputs) file(check string, err error) {
	if err != nil {
		in.findings = append(in.findings, preflight.Failf(preflight.Usage, check, "%v", err))
	}
}

// nonEmpty refuses a list flag given explicitly as empty (an empty --vhost), which
// would otherwise read as "all".
func (in *inputs) nonEmpty(fs *pflag.FlagSet, name string, values []string, all string) {
	if !fs.Changed(name) {
		return
	}
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			continue
		}
		in.emptyList(name, all)
		return
	}
	if len(values) == 0 {
		in.emptyList(name, all)
	}
}

func (in *inputs) emptyList(name, all string) {
	in.bad("--%s: an empty value; name them, or leave --%s out for %s", name, name, all)
	in.scopeless = in.scopeless || name == "vhost"
}

// stopIfScopeless stops a command whose --vhost is unusable, with the
// input findings alone.
func (in *inputs) stopIfScopeless(w io.Writer, g *globals) error {
	if !in.scopeless {
		return nil
	}
	return stopOnPreflight(w, g, &preflight.Report{Findings: in.findings}, nil)
}

// intRange refuses an int flag outside [lo, hi] (hi 0: no upper bound);
// given explicitly only, when explicit.
func (in *inputs) intRange(fs *pflag.FlagSet, name string, v, lo, hi int, explicit bool, why string) {
	if explicit && !fs.Changed(name) {
		return
	}
	switch {
	case v < lo && hi > 0:
		in.bad("--%s %d: want %d to %d%s", name, v, lo, hi, why)
	case v < lo:
		in.bad("--%s %d: want %d or more%s", name, v, lo, why)
	case hi > 0 && v > hi:
		in.bad("--%s %d: want %d to %d%s", name, v, lo, hi, why)
	}
}

// printPreflight prints the findings as one table. Passed findings are
// shown only with all (a dry run, -v, or a failure): otherwise the table
// is failures and warnings alone.
func printPreflight(w io.Writer, r *preflight.Report, all bool) {
	rows := r.Findings
	if !all {
		rows = append(r.Failed(), r.Warnings()...)
	}
	if len(rows) == 0 {
		return
	}
	t := table(w)
	fmt.Fprintln(t, "PREFLIGHT\tRESULT\tDETAIL")
	for _, f := range rows {
		res := "ok"
		switch f.Status {
		case preflight.Fail:
			res = "FAILED"
		case preflight.Warn:
			res = "warning"
		}
		fmt.Fprintf(t, "%s\t%s\t%s\n", f.Check, res, f.Detail)
	}
	t.Flush()
	fmt.Fprintln(w)
}

// stopOnPreflight prints the report and returns its error when any check
// failed: as a table, or with -o json as {"preflight": ...} plus extra
// fields (the plan, say). With nothing failed it prints the warnings (text
// only) and returns nil.
func stopOnPreflight(w io.Writer, g *globals, r *preflight.Report, extra map[string]any) error {
	err := r.Err()
	if err == nil {
		if !g.json() {
			printPreflight(w, r, g.verbose)
		}
		return nil
	}
	if g.json() {
		doc := map[string]any{"preflight": r}
		for k, v := range extra {
			doc[k] = v
		}
		if jerr := writeJSON(w, doc); jerr != nil {
			return errors.Join(err, jerr)
		}
		return err
	}
	printPreflight(w, r, true)
	return err
}

// serviceURLs checks verify's --service-url and --service-api.
func (in *inputs) serviceURLs(amqpURL, apiURL string) {
	if amqpURL != "" {
		if _, err := amqp.ParseURI(amqpURL); err != nil {
			in.bad("--service-url %s cannot be parsed: want amqp[s]://[user:password@]host:port/", broker.Redact(amqpURL))
		}
	}
	if apiURL != "" {
		if _, err := broker.ParseAPIURL("service", apiURL); err != nil {
			in.bad("--service-api: %v", err)
		}
	}
}
