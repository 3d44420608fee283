package loadcheck

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/warrenmq/warren/broker"
)

// Options are a load check's settings. Both sides run with the same ones.
type Options struct {
	// Source and Target are measured in that order.
	Source, Target broker.Endpoint
	// Vhost is where the queues are declared, on both sides; it must exist.
	Vhost string
	// Producers publish at once, each on a connection of its own.
	Producers int
	// Consumers lists the consumer counts: each is one measured round per
	// side, on a fresh queue. Each consumer has a connection of its own.
	Consumers []int
	// Size is each message body's size in bytes.
	Size int
	// Rate caps the messages published per second in a round, over all
	// producers; 0 publishes as fast as publisher confirms allow.
	Rate int
	// Duration is how long each round publishes; or else Count is how
	// many messages it publishes in all (exactly one of them is set).
	Duration time.Duration
	Count    int
	// QueueType is quorum or classic for both sides; empty means quorum
	// on the target and the vhost's default on the source, which is what
	// the applications get on each.
	QueueType string
	// InFlight bounds each producer's unconfirmed messages (default 128).
	InFlight int
	// Prefetch is each consumer's basic.qos prefetch (default 100).
	Prefetch int
	// Work is how long a consumer's handler takes per message, to stand
	// for processing; 0 acks at once.
	Work time.Duration
	// AllowLive runs even though other clients are connected to the
	// source's vhost.
	AllowLive bool
	// Progress receives each round's counts while it runs (default none).
	Progress Progress
	// Logger receives the run's log lines (default slog.Default()).
	Logger *slog.Logger
}

// Defaults and limits of Options.
const (
	DefaultInFlight = 128
	DefaultPrefetch = 100
	// MaxSize is RabbitMQ's default max_message_size (128 MiB).
	MaxSize = 128 << 20
	// MaxProducers and MaxConsumers bound the connections a round opens.
	MaxProducers = 64
	MaxConsumers = 200
	// maxBuffered bounds the message bodies in flight at once, in bytes.
	maxBuffered = 1 << 30
)

// Queue types.
const (
	Quorum  = "quorum"
	Classic = "classic"
)

// withDefaults fills in the zero values that have a default.
func (o Options) withDefaults() Options {
	if o.InFlight == 0 {
		o.InFlight = DefaultInFlight
	}
	if o.Prefetch == 0 {
		o.Prefetch = DefaultPrefetch
	}
	if o.Progress == nil {
		o.Progress = NoProgress{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate checks every setting, and the brokers' presence, without
// connecting to anything. Every problem is listed; the error wraps
// ErrBadOptions.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(o.Source.AMQP) == 0 || o.Source.API == "" {
		bad("no source broker: give its AMQP URL and HTTP API")
	}
	if len(o.Target.AMQP) == 0 || o.Target.API == "" {
		bad("no target broker: give its AMQP URLs and HTTP API")
	}
	if o.Vhost == "" {
		bad("--vhost: empty; name the vhost to run in (default /)")
	}
	if o.Producers < 1 || o.Producers > MaxProducers {
		bad("--producers %d: want 1 to %d", o.Producers, MaxProducers)
	}
	if len(o.Consumers) == 0 {
		bad("--consumers: no consumer count; give a list such as 1,3,5")
	}
	seen := map[int]bool{}
	for _, c := range o.Consumers {
		switch {
		case c < 1 || c > MaxConsumers:
			bad("--consumers: %d: want counts from 1 to %d", c, MaxConsumers)
		case seen[c]:
			bad("--consumers: %d given twice: each count is one round", c)
		}
		seen[c] = true
	}
	if o.Size < 0 || o.Size > MaxSize {
		bad("--size %d: want 0 to %d bytes (RabbitMQ's default max_message_size)", o.Size, MaxSize)
	}
	if o.Rate < 0 || o.Rate > 1_000_000 {
		bad("--rate %d: want 0 (as fast as confirms allow) to 1000000 msg/s", o.Rate)
	}
	switch {
	case o.Duration != 0 && o.Count != 0:
		bad("--duration %s and --count %d: give one of them", o.Duration, o.Count)
	case o.Duration == 0 && o.Count == 0:
		bad("give --duration or --count")
	case o.Count == 0 && (o.Duration < time.Second || o.Duration > 24*time.Hour):
		bad("--duration %s: want 1s to 24h", o.Duration)
	case o.Duration == 0 && (o.Count < 1 || o.Count > 1_000_000_000):
		bad("--count %d: want 1 to 1000000000 messages", o.Count)
	}
	if o.QueueType != "" && o.QueueType != Quorum && o.QueueType != Classic {
		bad("--queue-type %q: want quorum or classic (or leave it out: quorum on the target, the vhost's default on the source)", o.QueueType)
	}
	if o.InFlight < 1 || o.InFlight > 10_000 {
		bad("--in-flight %d: want 1 to 10000 unconfirmed messages per producer", o.InFlight)
	}
	if o.Prefetch < 1 || o.Prefetch > 65535 {
		bad("--prefetch %d: want 1 to 65535", o.Prefetch)
	}
	if o.Work < 0 || o.Work > time.Minute {
		bad("--work %s: want 0 to 1m per message", o.Work)
	}
	if o.Producers > 0 && o.InFlight > 0 && o.Size > 0 && int64(o.Producers)*int64(o.InFlight)*int64(o.Size) > maxBuffered {
		bad("--producers %d × --in-flight %d × --size %d bytes is more than %d MiB in flight: lower one of them",
			o.Producers, o.InFlight, o.Size, maxBuffered>>20)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	return nil
}

// rounds returns the consumer counts in ascending order.
func (o Options) rounds() []int {
	c := slices.Clone(o.Consumers)
	slices.Sort(c)
	return c
}

// queueType is the x-queue-type a side's queue is declared with; empty
// leaves the vhost's default.
func (o Options) queueType(side string) string {
	if o.QueueType != "" {
		return o.QueueType
	}
	if side == Target {
		return Quorum
	}
	return ""
}

// Side names.
const (
	Source = "source"
	Target = "target"
)
