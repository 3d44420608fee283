package definitions

import (
	"errors"
	"fmt"
)

// Class tells callers (the CLI's exit codes, warren migrate) what kind of
// failure an error is, so that each can be reported and handled apart.
type Class int

const (
	// ClassOther is any failure not classified below.
	ClassOther Class = iota
	// ClassUsage is bad input from the user: a malformed or truncated
	// definitions file, an unknown queue type, a single-vhost file without a
	// vhost name.
	ClassUsage
	// ClassPreflight means a broker is unreachable, refuses the login, is not
	// RabbitMQ, or is unfit for the plan (older than the source, missing a
	// plugin the definitions need, the user is not an administrator).
	ClassPreflight
	// ClassConflict means the plan cannot be applied as it stands: objects
	// that conflict with the target, or arguments the target's quorum queues
	// refuse, with no decision about them.
	ClassConflict
)

func (c Class) String() string {
	switch c {
	case ClassUsage:
		return "usage"
	case ClassPreflight:
		return "preflight"
	case ClassConflict:
		return "conflict"
	default:
		return "other"
	}
}

// Error is an error with its Class.
type Error struct {
	Class Class
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err, ClassOther when it has none.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ClassOther
}

func classed(c Class, format string, args ...any) error {
	return &Error{Class: c, Err: fmt.Errorf(format, args...)}
}
