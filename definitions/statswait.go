package definitions

import "context"

// noStatsWait is the context key of WithoutStatsWait.
type noStatsWait struct{}

// WithoutStatsWait returns a context in which Probe (and Plan.Check, which
// probes the target) reads the nodes' applications once, without waiting
// for nodes the HTTP API lists as running but not yet with their figures.
//
// That wait (up to 30 s) rides out a node that has just started; it is
// wasted on a command whose preflight has already failed and will stop
// anyway, and a node whose statistics agent has crashed
// (rabbitmq-server#5496) never ends it. Callers use it once a finding has
// failed, so that bad input is reported at once.
func WithoutStatsWait(ctx context.Context) context.Context {
	return context.WithValue(ctx, noStatsWait{}, true)
}

// StatsWait reports whether ctx allows waiting for the nodes' figures (see
// WithoutStatsWait).
func StatsWait(ctx context.Context) bool {
	no, _ := ctx.Value(noStatsWait{}).(bool)
	return !no
}
