package shovel

import (
	"errors"
	"fmt"
	"time"

	"github.com/warrenmq/warren/broker"
)

// Options configure a drain.
type Options struct {
	Source, Target broker.Endpoint
	// Vhosts limits the drain to these vhosts; all vhosts when empty.
	Vhosts []string
	// Side is where the shovels run; OnTarget when empty.
	Side Side
	// ShovelSourceURL is how the shovels reach the source, when it differs
	// from what warren uses (e.g. from inside Kubernetes). Default: the
	// source's first AMQP URL.
	ShovelSourceURL string
	// ShovelTargetURLs is how shovels on the source reach the target.
	// Default: every target AMQP URL, so a shovel fails over between nodes.
	ShovelTargetURLs []string
	// Parallel is how many queues drain at once; 0 sizes it to the cluster
	// (ParallelPerNode per node that runs shovels).
	Parallel int
	// Prefetch is each shovel's src-prefetch-count (default DefaultPrefetch).
	// It bounds what a shovel has in flight, and so the duplicates one
	// shovel restart can cause.
	Prefetch int
	// AllowLive lets the drain run while other clients are attached to the
	// source; each queue is then done once it has stayed empty for Settle.
	AllowLive bool
	Settle    time.Duration
	// StallTimeout fails a queue whose counts stop moving for this long
	// (default 2 minutes). Its shovel is left in place: nothing is lost.
	// Time spent paused for a resource alarm does not count.
	StallTimeout time.Duration
	// StartTimeout bounds how long a declared shovel may take to be
	// reported running before it is declared again (default 30 s).
	StartTimeout time.Duration
	// StatePath is the resume file; empty keeps state in memory only.
	StatePath string
	// Progress receives per-queue progress; nil reports nothing.
	Progress Progress
	// Poll is how often counts are read (default 250ms).
	Poll time.Duration
	// Unverified adds to the report the queues earlier runs drained and no
	// verification has passed yet (see MarkVerified), so that a migration
	// run again after a failed verification checks their counts again.
	Unverified bool
}

// ParallelPerNode is how many queues drain at once per node that runs
// shovels when Options.Parallel is 0. Each shovel is one consumer and one
// publisher; on the lab's 3-node cluster two per node kept every node busy
// without the shovels starving each other (see README, "Draining
// messages").
const ParallelPerNode = 2

// ErrBadOptions marks options that can never work; nothing was changed.
var ErrBadOptions = errors.New("invalid drain options")

// Validate refuses options out of range. Zero values mean "default".
func (o Options) Validate() error {
	var errs []error
	if _, err := ParseSide(string(o.Side)); err != nil {
		errs = append(errs, err)
	}
	for _, c := range []struct {
		name string
		bad  bool
		want string
	}{
		{"parallel", o.Parallel < 0, "at least 1"},
		{"prefetch", o.Prefetch < 0, "at least 1"},
		{"settle", o.Settle < 0, "a positive duration"},
		{"stall timeout", o.StallTimeout < 0, "a positive duration"},
		{"start timeout", o.StartTimeout < 0, "a positive duration"},
		{"poll", o.Poll < 0, "a positive duration"},
	} {
		if c.bad {
			errs = append(errs, fmt.Errorf("%s must be %s", c.name, c.want))
		}
	}
	for _, v := range o.Vhosts {
		if v == "" {
			errs = append(errs, errors.New("an empty vhost name: name the vhosts, or leave --vhost out for all of them"))
			break
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrBadOptions, errors.Join(errs...))
	}
	return nil
}

// withDefaults validates o and fills in defaults; Parallel stays 0 when
// the cluster has to size it.
func (o Options) withDefaults() (Options, error) {
	if err := o.Validate(); err != nil {
		return o, err
	}
	o.Side, _ = ParseSide(string(o.Side))
	if o.Prefetch == 0 {
		o.Prefetch = DefaultPrefetch
	}
	if o.Settle == 0 {
		o.Settle = 10 * time.Second
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = 2 * time.Minute
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.Poll == 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = NoProgress{}
	}
	if o.ShovelSourceURL == "" && len(o.Source.AMQP) > 0 {
		o.ShovelSourceURL = o.Source.URLWithVhost(0, "")
	}
	if len(o.ShovelTargetURLs) == 0 {
		for i := range o.Target.AMQP {
			o.ShovelTargetURLs = append(o.ShovelTargetURLs, o.Target.URLWithVhost(i, ""))
		}
	}
	return o, nil
}
