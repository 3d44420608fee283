// Package preflight checks a command's inputs before the command changes
// anything: TLS files load and match, every URL's scheme matches what its
// port speaks, logins work, the target URLs name distinct nodes and as many
// as the cluster runs, and the login's tags and permissions allow every
// call the command will make.
//
// Each check is a Finding. A Report gathers every finding of a command
// (its flags, its files, both brokers) into the one table the command
// prints, and Report.Err says whether the command may go ahead: it stops,
// with nothing changed, while any finding failed. Nothing here writes to a
// broker; the only trace it leaves is one short-lived AMQP connection per
// URL, named so that it can be told from the applications' (ConnectionName).
package preflight

import (
	"errors"
	"fmt"
	"strings"
)

// Status is a finding's outcome.
type Status string

// Finding outcomes. A warning lets the command go ahead.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Class says what kind of failure a finding is, so that callers can map it
// to an exit code.
type Class string

// Failure classes, from the one to fix first.
const (
	// Usage is bad input: a flag out of range, an unreadable or malformed
	// file, URLs that name one node twice, a source that is the target.
	Usage Class = "usage"
	// Unfit is a broker that cannot be used as given: unreachable, refusing
	// the login, lacking a tag, permission, plugin or node.
	Unfit Class = "preflight"
	// Conflict is a plan that cannot be applied as it stands: objects that
	// exist on the target otherwise, arguments that need a decision.
	Conflict Class = "conflict"
)

// rank orders classes: the lowest-ranked failed class is the report's.
var rank = map[Class]int{Usage: 0, Unfit: 1, Conflict: 2}

// Finding is one check's outcome.
type Finding struct {
	// Check names what was checked: "flags", "tls files", "target URL 2", ...
	Check  string `json:"check"`
	Status Status `json:"status"`
	// Detail says what is true and, for a failure, how to fix it.
	Detail string `json:"detail"`
	// Class is set on failures.
	Class Class `json:"class,omitempty"`
}

// Passf returns a passed finding.
func Passf(check, format string, a ...any) Finding {
	return Finding{Check: check, Status: OK, Detail: fmt.Sprintf(format, a...)}
}

// Warnf returns a warning: the command goes ahead, and says so.
func Warnf(check, format string, a ...any) Finding {
	return Finding{Check: check, Status: Warn, Detail: fmt.Sprintf(format, a...)}
}

// Failf returns a failed finding of class c.
func Failf(c Class, check, format string, a ...any) Finding {
	return Finding{Check: check, Status: Fail, Class: c, Detail: fmt.Sprintf(format, a...)}
}

// Report is every finding of one command, in the order checked.
type Report struct {
	Findings []Finding `json:"findings"`
}

// Add appends findings.
func (r *Report) Add(fs ...Finding) { r.Findings = append(r.Findings, fs...) }

// Failed returns the failed findings.
func (r *Report) Failed() []Finding { return r.with(Fail) }

// Warnings returns the warnings.
func (r *Report) Warnings() []Finding { return r.with(Warn) }

func (r *Report) with(s Status) []Finding {
	if r == nil {
		return nil
	}
	var out []Finding
	for _, f := range r.Findings {
		if f.Status == s {
			out = append(out, f)
		}
	}
	return out
}

// Err is nil when every finding passed or warned, and otherwise an *Error
// naming each failure.
func (r *Report) Err() error {
	failed := r.Failed()
	if len(failed) == 0 {
		return nil
	}
	c := failed[0].Class
	for _, f := range failed {
		if rank[f.Class] < rank[c] {
			c = f.Class
		}
	}
	return &Error{Class: c, Failed: failed}
}

// Error is a preflight that failed: nothing was changed.
type Error struct {
	// Class is the class of the failure to fix first (usage before unfit
	// before conflict), which decides the exit code.
	Class  Class
	Failed []Finding
}

// ErrFailed matches every *Error with errors.Is.
var ErrFailed = errors.New("preflight failed")

func (e *Error) Is(target error) bool { return target == ErrFailed }

// Summary is the error's first line: how many checks failed, and that
// nothing was changed.
func (e *Error) Summary() string {
	return fmt.Sprintf("preflight: %d check(s) failed; nothing was changed. Fix each and run the same command again", len(e.Failed))
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Summary() + ":")
	for _, f := range e.Failed {
		fmt.Fprintf(&b, "\n  %s: %s", f.Check, f.Detail)
	}
	return b.String()
}

// ClassOf returns the class of a preflight error, "" for other errors.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ""
}
