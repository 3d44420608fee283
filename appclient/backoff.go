package appclient

import (
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Backoff paces reconnection attempts: exponential growth with random
// jitter, capped. Zero fields take the defaults.
type Backoff struct {
	// Initial is the wait after the first failed attempt (default 100ms).
	Initial time.Duration
	// Max caps every wait, jitter included (default 10s). Keep it short
	// enough that a service notices soon when a node is back.
	Max time.Duration
	// Multiplier grows the wait after each failure (default 2).
	Multiplier float64
	// Jitter spreads each wait over ±Jitter of its value, so that many
	// services dropped at once by a node do not come back in lockstep
	// (default 0.5; a negative value means none).
	Jitter float64
}

// Default backoff settings.
const (
	DefaultBackoffInitial    = 100 * time.Millisecond
	DefaultBackoffMax        = 10 * time.Second
	DefaultBackoffMultiplier = 2.0
	DefaultBackoffJitter     = 0.5
)

func (b Backoff) validate() error {
	if b.Initial < 0 || b.Max < 0 || b.Multiplier < 0 || b.Jitter >= 1 {
		return fmt.Errorf("appclient: backoff %+v: want Initial, Max, Multiplier >= 0 and Jitter < 1", b)
	}
	if b.Multiplier > 0 && b.Multiplier < 1 {
		return fmt.Errorf("appclient: backoff multiplier %g would shrink the waits: want 1 or more", b.Multiplier)
	}
	if b.Initial > 0 && b.Max > 0 && b.Initial > b.Max {
		return fmt.Errorf("appclient: backoff initial wait %s exceeds the cap %s", b.Initial, b.Max)
	}
	return nil
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial == 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max == 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Initial > b.Max {
		b.Initial = b.Max
	}
	if b.Multiplier == 0 {
		b.Multiplier = DefaultBackoffMultiplier
	}
	switch {
	case b.Jitter == 0:
		b.Jitter = DefaultBackoffJitter
	case b.Jitter < 0:
		b.Jitter = 0
	}
	return b
}

// Waits returns a fresh sequence of waits. Its Next method is not safe for
// concurrent use; each reconnect loop takes its own.
func (b Backoff) Waits() *Waits {
	b = b.withDefaults()
	return &Waits{max: b.Max, exp: &backoff.ExponentialBackOff{
		InitialInterval:     b.Initial,
		RandomizationFactor: b.Jitter,
		Multiplier:          b.Multiplier,
		MaxInterval:         b.Max,
	}}
}

// Waits is one sequence of backoff waits, built on cenkalti/backoff's
// ExponentialBackOff with its randomized value clamped to the cap.
type Waits struct {
	max time.Duration
	exp *backoff.ExponentialBackOff
}

// Next returns the next wait.
func (w *Waits) Next() time.Duration {
	d := w.exp.NextBackOff()
	if d > w.max {
		d = w.max
	}
	return d
}

// Reset starts the sequence over, after a success.
func (w *Waits) Reset() { w.exp.Reset() }
