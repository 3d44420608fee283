package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// callKind sizes a call's timeout: a busy node answers a single object in
// well under a second, but lists of thousands of queues, or a definitions
// import that starts hundreds of quorum queues, take much longer.
type callKind int

const (
	kindQuick callKind = iota // one object, a small list, a write of one object
	kindList                  // every queue, node or definition of a broker
	kindBulk                  // a definitions import
)

// CallPolicy is the HTTP API's one retry and timeout policy. Every call of the
// package goes through it; nothing else retries HTTP calls.
//
//   - Each attempt has a timeout sized to the call: Quick for one object,
//     List (a whole broker's queues or definitions) and Bulk (a definitions
//     import).
//   - Idempotent calls (GET, PUT, DELETE) are retried, with exponential
//     backoff and jitter (cenkalti/backoff), on timeouts, connection errors
//     and 5xx answers, for up to Retry in all. A 503 is what a node that is
//     booting or overloaded answers.
//   - POST is never retried here: a timed-out write may have taken effect,
//     so the caller reads the state back before deciding (see
//     PutShovel and definitions import).
//
// Retry 0 turns retries off (one attempt per call).
type CallPolicy struct {
	Quick, List, Bulk time.Duration
	Retry             time.Duration
	// RefusedRetry is the shorter budget for an address where nothing
	// listens or a name that does not resolve: mistyped settings more
	// often than a node restarting, which should not cost a minute.
	RefusedRetry time.Duration
	// FirstBackoff and MaxBackoff bound the waits between attempts.
	FirstBackoff, MaxBackoff time.Duration
}

// DefaultPolicy is the policy of NewAPI for an endpoint whose single-call
// timeout is quick.
func DefaultPolicy(quick time.Duration) CallPolicy {
	return CallPolicy{
		Quick: quick, List: 4 * quick, Bulk: 10 * quick,
		Retry: time.Minute, RefusedRetry: 5 * time.Second,
		FirstBackoff: 250 * time.Millisecond, MaxBackoff: 5 * time.Second,
	}
}

// NoRetry is p with retries off, for probes that poll on their own.
func (p CallPolicy) NoRetry() CallPolicy {
	p.Retry = 0
	return p
}

func (p CallPolicy) timeout(k callKind) time.Duration {
	switch k {
	case kindList:
		return p.List
	case kindBulk:
		return p.Bulk
	}
	return p.Quick
}

// idempotent reports whether sending the request twice has the effect of
// sending it once.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// Transient reports whether err is a failure that may pass by itself: no
// answer (unreachable, reset, timed out) or a 5xx answer.
func Transient(err error) bool {
	var te *TransportError
	if errors.As(err, &te) {
		return true
	}
	return statusOf(err) >= 500
}

// run calls attempt under the policy.
func (p CallPolicy) run(ctx context.Context, r request, attempt func(context.Context) error) error {
	start := time.Now()
	one := func() (struct{}, error) {
		actx, cancel := context.WithTimeout(ctx, p.timeout(r.kind))
		defer cancel()
		err := attempt(actx)
		if err != nil && ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(fmt.Errorf("%s /api/%s: %w", r.method, r.path, ctx.Err()))
		}
		if err != nil && actx.Err() != nil {
			err = fmt.Errorf("%w (no answer within %s)", err, p.timeout(r.kind))
		}
		if err != nil && !Transient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		var te *TransportError
		if errors.As(err, &te) && te.refused() && time.Since(start) >= p.RefusedRetry {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}
	if p.Retry <= 0 || !(idempotent(r.method) || r.repeatable) {
		_, err := one()
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			return perm.Err
		}
		return err
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = p.FirstBackoff, p.MaxBackoff
	_, err := backoff.Retry(ctx, one,
		backoff.WithBackOff(b),
		backoff.WithMaxElapsedTime(p.Retry),
		backoff.WithNotify(func(err error, wait time.Duration) {
			slog.Debug("HTTP API call failed; retrying", "call", r.method+" /api/"+r.path, "in", wait.Round(time.Millisecond), "err", err)
		}))
	return err
}
