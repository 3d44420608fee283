package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/loadcheck"
	"github.com/warrenmq/warren/migrate"
	"github.com/warrenmq/warren/shovel"
	"github.com/warrenmq/warren/stack"
	"github.com/warrenmq/warren/verify"
)

// Exit codes, one per failure class, so scripts can tell them apart.
const (
	exitOK           = 0
	exitFailure      = 1 // anything not classified below
	exitUsage        = 2 // bad flags, arguments or input; nothing changed
	exitPreflight    = 3 // a broker is unreachable, refuses the login, or is unfit; clients still attached
	exitConflict     = 4 // the plan conflicts with the target, or is unsafe
	exitDrain        = 5 // moving messages failed or counts did not match
	exitVerification = 6 // a verification check failed
	// exitInterrupted is the shell's code for a run stopped by SIGINT: a
	// drain stopped so resumes when run again.
	exitInterrupted = 130
)

// usageError is bad input the CLI itself found: a flag out of range, a
// file that cannot be read. Nothing was changed.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usage marks err as bad input (exit 2); nil stays nil.
func usage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// usagef is usage(fmt.Errorf(...)).
func usagef(format string, a ...any) error { return usage(fmt.Errorf(format, a...)) }

// unavailableError is a broker or lab the command needs and cannot use.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// unavailable marks err as a preflight failure (exit 3); nil stays nil.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &unavailableError{err}
}

// exitCode maps an error to the process's exit code. It is the only place
// that does: commands return the libraries' errors, which carry their
// class, and the CLI's own usage and unavailable marks.
func exitCode(err error) int {
	var (
		ue *usageError
		ua *unavailableError
		te *broker.TransportError
		se *broker.StatusError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue),
		errors.Is(err, shovel.ErrBadOptions),
		errors.Is(err, broker.ErrSameBroker),
		errors.Is(err, stack.ErrConfig),
		errors.Is(err, loadcheck.ErrBadOptions),
		definitions.ClassOf(err) == definitions.ClassUsage:
		return exitUsage
	case errors.Is(err, shovel.ErrInterrupted), errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, verify.ErrFailed):
		return exitVerification
	case errors.Is(err, shovel.ErrNotConserved), errors.Is(err, shovel.ErrDrainFailed):
		return exitDrain
	case errors.Is(err, shovel.ErrTargetLimit), definitions.ClassOf(err) == definitions.ClassConflict:
		return exitConflict
	case errors.As(err, &ua),
		errors.Is(err, shovel.ErrLiveClients),
		errors.Is(err, loadcheck.ErrLiveClients),
		errors.Is(err, loadcheck.ErrPreflight),
		errors.Is(err, shovel.ErrNoDestination),
		errors.Is(err, migrate.ErrPreflight),
		errors.Is(err, stack.ErrPreflight),
		definitions.ClassOf(err) == definitions.ClassPreflight,
		errors.As(err, &te),
		errors.As(err, &se) && (se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden):
		return exitPreflight
	case migrate.FailedPhase(err) == migrate.Preflight:
		return exitPreflight
	}
	return exitFailure
}

// usageOnArgs makes cobra's own argument errors (an unknown subcommand, a
// stray argument) usage errors, and flag errors through the flag-error
// hook, for cmd and every command below it.
func usageOnArgs(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	for _, c := range cmd.Commands() {
		usageOnArgs(c)
	}
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		// A group: with no subcommand it shows its help; with an unknown
		// one it says so (cobra would show the help and exit 0).
		cmd.Args = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q; see %s --help", args[0], c.CommandPath(), c.CommandPath())
			}
			return nil
		}
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		return
	}
	if orig := cmd.Args; orig != nil {
		cmd.Args = func(c *cobra.Command, args []string) error { return usage(orig(c, args)) }
	}
}
