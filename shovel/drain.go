package shovel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
)

// drainer holds what one Drain (or CheckLive) uses.
type drainer struct {
	opts           Options
	srcAPI, dstAPI *broker.API
	counts         *counts
	fleet          *fleet
	state          *State
	alarms         *alarms
	producers      *producers // with AllowLive
}

func newDrainer(ctx context.Context, opts Options) (*drainer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &drainer{opts: opts, state: nil}
	if d.srcAPI, err = opts.Source.NewAPI(); err != nil {
		return nil, err
	}
	if d.dstAPI, err = opts.Target.NewAPI(); err != nil {
		return nil, err
	}
	if d.state, err = OpenState(opts.StatePath); err != nil {
		return nil, err
	}
	d.counts = &counts{src: broker.NewDepths(opts.Source), dst: broker.NewDepths(opts.Target), srcAPI: d.srcAPI, dstAPI: d.dstAPI}
	d.fleet = &fleet{side: opts.Side, api: d.dstAPI, start: opts.StartTimeout}
	if opts.Side == OnSource {
		d.fleet.api = d.srcAPI
	}
	return d, nil
}

func (d *drainer) close() {
	d.counts.src.Close()
	d.counts.dst.Close()
}

// Drain moves every message queued on the source into the same queue on the
// target. Each target queue must already exist (import definitions first).
// It returns a report even when some queues failed; the error then names
// them. Running it again resumes an interrupted drain, and does nothing
// after a complete one.
func Drain(ctx context.Context, opts Options) (*Report, error) {
	start := time.Now()
	d, err := newDrainer(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer d.close()
	opts = d.opts
	if err := broker.CheckDistinct(ctx, d.srcAPI, d.dstAPI); err != nil {
		return nil, err
	}
	if opts.Side == OnTarget {
		// Shovels run on the node that leads their destination queue; the
		// cluster's node APIs make that possible.
		if d.fleet.cluster, err = d.dstAPI.Discover(ctx); err != nil {
			return nil, err
		}
	}
	report := &Report{Side: opts.Side, Parallel: d.parallel()}

	found, err := d.discover(ctx)
	if err != nil {
		return nil, err
	}
	report.Skipped = found.skipped
	if err := d.checkLive(found.live); err != nil {
		return nil, err
	}
	if len(found.work) == 0 {
		report.Queues = found.carried
		report.finish(start)
		return report, nil
	}
	baselines, err := d.prepare(ctx, found.work)
	if err != nil {
		return nil, err
	}
	slog.Info("draining", "queues", len(found.work), "side", opts.Side, "parallel", report.Parallel)
	expect := 0
	for _, r := range baselines {
		expect += max(0, r.SourceBefore-r.Moved)
	}
	opts.Progress.Expect(expect)

	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	d.alarms = watchAlarms(watchCtx, d.dstAPI, time.Second)
	if opts.AllowLive {
		d.producers = d.watchProducers(watchCtx, found.work, 2*time.Second)
	}

	results := make([]QueueResult, len(found.work))
	sem := make(chan struct{}, report.Parallel)
	var wg sync.WaitGroup
	for i, w := range found.work {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				r := baselines[i]
				r.Status, r.Detail = StatusInterrupted, "not started before the interrupt"
				results[i] = r
				return
			}
			defer func() { <-sem }()
			results[i] = d.queue(ctx, w, baselines[i])
		}()
	}
	wg.Wait()
	opts.Progress.Close()
	report.Queues = append(results, found.carried...)
	report.Pauses = d.alarms.pauses()
	report.Placement = placementNotes(results)
	report.finish(start)
	return report, outcome(results)
}

// outcome is the drain's error: the worst class among its queues.
func outcome(results []QueueResult) error {
	var lost, failed, interrupted []string
	for _, r := range results {
		line := fmt.Sprintf("%s/%s: %s", r.Vhost, r.Queue, r.Detail)
		switch {
		case r.Status == StatusInterrupted:
			interrupted = append(interrupted, r.Queue)
		case r.Status == StatusDrained:
		case r.Lost > 0 || r.Duplicates > r.DuplicateBound:
			lost = append(lost, line)
		default:
			failed = append(failed, line)
		}
	}
	switch {
	case len(lost) > 0:
		return fmt.Errorf("%w: %d of %d queues: %s", ErrNotConserved, len(lost), len(results), strings.Join(append(lost, failed...), "; "))
	case len(failed) > 0:
		return fmt.Errorf("%w: %d of %d queues, no message lost: %s", ErrDrainFailed, len(failed), len(results), strings.Join(failed, "; "))
	case len(interrupted) > 0:
		return fmt.Errorf("%w: %d of %d queues unfinished. Nothing is lost: shovels already started keep moving messages, "+
			"and running the same command again resumes with the first run's counts (or `warren drain --abort` removes warren's shovels)",
			ErrInterrupted, len(interrupted), len(results))
	}
	return nil
}

// parallel is how many queues drain at once: Options.Parallel, or
// ParallelPerNode per node that runs shovels.
func (d *drainer) parallel() int {
	if d.opts.Parallel > 0 {
		return d.opts.Parallel
	}
	nodes := 1
	if d.opts.Side == OnTarget {
		nodes = max(1, len(d.fleet.cluster.Running()))
	}
	return ParallelPerNode * nodes
}

// prepareParallel bounds how many queues prepare checks at once.
const prepareParallel = 16

// prepare checks every queue's destination before anything moves, and
// returns each queue's baseline: the first run's (kept in the state) or
// the depths now, recorded in the state before any shovel is declared so
// that a run killed from then on resumes with them.
func (d *drainer) prepare(ctx context.Context, work []workItem) ([]QueueResult, error) {
	// Queues are checked side by side: each check reads a few depths
	// (settledTargetDepth waits between its readings), which one after
	// the other added a third of a second per queue to every drain.
	out := make([]QueueResult, len(work))
	errs := make([]error, len(work))
	sem := make(chan struct{}, prepareParallel)
	var wg sync.WaitGroup
	for i, w := range work {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = d.baseline(ctx, w)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, r := range out {
		if err := d.state.Put(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// baseline checks one destination (it exists, no consumer reads it, its
// limits keep every message) and returns the queue's baseline.
func (d *drainer) baseline(ctx context.Context, w workItem) (QueueResult, error) {
	r := QueueResult{Vhost: w.vhost, Queue: w.name, Shovel: Name(w.name), Live: d.opts.AllowLive, Status: StatusPending}
	// The destination must exist as planned: a shovel publishing to a
	// missing queue through the default exchange is confirmed and dropped.
	_, dstConsumers, err := d.counts.dst.Depth(ctx, w.vhost, w.name)
	if errors.Is(err, broker.ErrNoQueue) {
		return r, fmt.Errorf("%w: the target has no queue %q in vhost %q, so its messages would be dropped; nothing was moved. Import the definitions first (warren definitions import, or warren migrate)",
			ErrNoDestination, w.name, w.vhost)
	}
	if err != nil {
		return r, err
	}
	if dstConsumers > 0 && !d.opts.AllowLive {
		// Consumers on the target take messages as they arrive, so its
		// depth can no longer prove that every message came.
		return r, fmt.Errorf("%w: %d consumer(s) on the target queue %q in vhost %q already; nothing was moved. Stop them until the drain is done, or pass --allow-live to drain anyway (counts then cannot be checked)",
			ErrLiveClients, dstConsumers, w.name, w.vhost)
	}
	dst, err := d.dstAPI.GetQueue(ctx, w.vhost, w.name)
	if err != nil {
		return r, err
	}
	if err := withPolicies(ctx, d.dstAPI, dst); err != nil {
		return r, err
	}
	src, err := d.srcAPI.GetQueue(ctx, w.vhost, w.name)
	if err != nil {
		return r, err
	}
	ready, err := d.counts.sourceReady(ctx, w.vhost, w.name)
	if err != nil {
		return r, err
	}
	incomingBytes := src.MessageBytes
	if n, ok := src.Count(); ok && n > 0 && n < ready {
		incomingBytes = incomingBytes * int64(ready) / int64(n) // the API lags: scale
	}
	if err := checkLimits(dst, ready, incomingBytes); err != nil {
		return r, err
	}
	if prev, ok := d.state.Get(w.vhost, w.name); ok && unfinished(prev) {
		// Resume: keep the depths seen before the first shovel, and what
		// the first runs counted.
		prev.Status, prev.Resumed, prev.Live, prev.MovedThisRun = StatusPending, true, d.opts.AllowLive, 0
		slog.Info("resuming drain", "vhost", w.vhost, "queue", w.name, "source_before", prev.SourceBefore, "target_before", prev.TargetBefore)
		return prev, nil
	}
	if w.shovel {
		// A shovel of ours without a baseline (the state file was lost):
		// stop it so the counts below are exact (its unacked messages are
		// requeued).
		slog.Warn("found a shovel of an earlier run without its state; restarting it", "vhost", w.vhost, "queue", w.name)
		if err := d.fleet.remove(ctx, w.vhost, Name(w.name)); err != nil {
			return r, err
		}
	}
	if r.SourceBefore, err = d.counts.sourceReady(ctx, w.vhost, w.name); err != nil {
		return r, err
	}
	if r.TargetBefore, err = d.counts.settledTargetDepth(ctx, w.vhost, w.name); err != nil {
		return r, err
	}
	if red, err := d.counts.readRedeliveries(ctx, w.vhost, w.name); err == nil {
		r.RedeliverSeen, r.SourceUptime = red.count, red.uptime
	}
	return r, nil
}

// spec is the shovel for a queue.
func (d *drainer) spec(vhost, queue string) Spec {
	s := Spec{Vhost: vhost, Queue: queue, Prefetch: d.opts.Prefetch}
	withVhost := func(raw string) string {
		u, err := amqp.ParseURI(raw)
		if err != nil {
			return raw
		}
		u.Vhost = vhost
		return u.String()
	}
	if d.opts.Side == OnSource {
		s.SrcURIs = []string{DirectURI(vhost)}
		for _, u := range d.opts.ShovelTargetURLs {
			s.DestURIs = append(s.DestURIs, withVhost(u))
		}
	} else {
		s.SrcURIs = []string{withVhost(d.opts.ShovelSourceURL)}
		s.DestURIs = []string{DirectURI(vhost)}
	}
	return s
}

// placement returns the API to declare a queue's shovel through: on the
// target, that of the node leading the destination queue, so the shovel
// publishes to the leader over a local connection and the cluster's nodes
// share the work. It says how it chose, and which node led the queue.
func (d *drainer) placement(ctx context.Context, vhost, queue string) (api *broker.API, how, leader string) {
	if d.opts.Side == OnSource {
		return d.fleet.api, "source", ""
	}
	q, err := d.dstAPI.GetQueue(ctx, vhost, queue)
	if err != nil {
		return d.fleet.api, "fallback: the destination's leader is unknown: " + err.Error(), ""
	}
	leader = q.Leader
	if leader == "" {
		leader = q.Node
	}
	api, why := d.fleet.nodeAPI(leader)
	if why != "" {
		return api, fmt.Sprintf("fallback: %s leads the queue, but %s", leader, why), leader
	}
	return api, "leader", leader
}

// placementNotes lists each distinct fallback reason once.
func placementNotes(results []QueueResult) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range results {
		if strings.HasPrefix(r.Placement, "fallback") && !seen[r.Placement] {
			seen[r.Placement] = true
			out = append(out, r.Placement)
		}
	}
	sort.Strings(out)
	return out
}
