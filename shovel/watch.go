package shovel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
)

// ackGrace is how long a queue whose every message has arrived waits for
// the shovel's last acks before its shovel is removed. The shovel acks a
// message on the source as the target confirms it, which is when the
// target's count (what warren reads) includes it: the acks land within
// milliseconds, and the source's HTTP total, which would show them, lags by
// seconds. Should an ack still be in flight, removing the shovel requeues
// its message, and finish moves it again: a counted duplicate, never a
// loss. A second here was a second added to every queue's drain.
const ackGrace = 300 * time.Millisecond

// redeliveryEvery is how often the source's redeliver counter is read.
const redeliveryEvery = 2 * time.Second

// A shovel the broker reports running may still move nothing: on RabbitMQ
// 3.10, one publishing to a quorum queue whose leader died keeps its
// window of unconfirmed messages for ever, though the queue has a new
// leader. A new shovel (a new channel) moves at once, so a shovel that
// makes no progress while the source holds messages is restarted: at
// once when its destination's leader has moved, after restartAfter
// otherwise, at most maxRestarts times, on the node that leads the queue
// now. Each restart may duplicate up to a prefetch window, which the
// source's redeliver counter (the duplicate bound) counts.
const (
	leaderMoveGrace = 5 * time.Second
	restartAfter    = 20 * time.Second
	maxRestarts     = 3
)

// queue drains one queue and reports it; failures are in the result.
func (d *drainer) queue(ctx context.Context, w workItem, r QueueResult) QueueResult {
	start := time.Now()
	err := d.drainQueue(ctx, w, &r)
	r.Seconds += time.Since(start).Seconds()
	switch {
	case err != nil && ctx.Err() != nil:
		r.Status, r.Detail = StatusInterrupted, err.Error()
		slog.Warn("queue drain interrupted", "vhost", w.vhost, "queue", w.name)
	case err != nil:
		r.Status, r.Detail = StatusFailed, err.Error()
		slog.Error("queue not drained", "vhost", w.vhost, "queue", w.name, "err", err)
	}
	// The state keeps the baseline until the queue is drained, so the
	// next run (resume, after an abort) counts from the first run's
	// depths and keeps counting its redeliveries.
	if perr := d.state.Put(r); perr != nil && err == nil {
		r.Status, r.Detail = StatusFailed, perr.Error()
	}
	return r
}

// drainQueue follows a queue until it is drained, then removes its shovel
// and judges the counts.
func (d *drainer) drainQueue(ctx context.Context, w workItem, r *QueueResult) error {
	start := time.Now()
	bar := d.opts.Progress.Queue(w.vhost, w.name, r.SourceBefore)
	defer func() { bar.Done(*r) }()
	startMoved := r.Moved
	defer func() { r.MovedThisRun = max(0, r.Moved-startMoved) }()

	q := queueRun{d: d, w: w, r: r}
	q.place(ctx)
	if err := q.start(ctx); err != nil {
		return err
	}
	slog.Debug("shovel running", "vhost", w.vhost, "queue", w.name, "node", r.Node, "after", time.Since(start).Round(time.Millisecond))

	tick := time.NewTimer(d.opts.Poll)
	defer tick.Stop()
	running := time.Now()
	lastMoved, lastChange := -1, time.Now()
	var emptySince, reachedAt, lastRedelivery time.Time
	lastRead, lastWarned := time.Now(), time.Time{}
	var lastWaiting time.Time
	suspect := 0
	for {
		select {
		case <-ctx.Done():
			// Leave the shovel running: it keeps moving messages safely
			// and the next run picks it up.
			return fmt.Errorf("interrupted; the shovel keeps running, run the same command again to finish: %w", ctx.Err())
		case <-tick.C:
		}
		tick.Reset(d.pollInterval(r, r.Moved-startMoved, time.Since(running)))
		if paused, err := q.alarms(ctx); err != nil {
			return err
		} else if paused {
			lastChange = time.Now() // a pause is not a stall
		}

		// Source first, then target: between the two readings messages
		// only move towards the target, so the target reading is never
		// behind the source reading (see lossSuspected).
		srcReady, err := d.counts.sourceReady(ctx, r.Vhost, r.Queue)
		exact := false
		if err == nil {
			exact, err = d.observeTarget(ctx, r)
		}
		if err != nil && !errors.Is(err, broker.ErrNoQueue) {
			// A broker that stays unreachable must not keep warren waiting
			// for ever: give up after the stall timeout, shovel in place.
			if time.Since(lastRead) > d.opts.StallTimeout {
				return fmt.Errorf("%w: cannot read queue depths for %s: %v; the shovel is left running: fix the cause and run the same command again, or `warren drain --abort`",
					ErrDrainFailed, d.opts.StallTimeout, err)
			}
			// Polls are frequent; say it once, then every 10 s while it lasts.
			if time.Since(lastWarned) >= 10*time.Second {
				lastWarned = time.Now()
				slog.Warn("cannot read queue depths; retrying until the stall timeout", "vhost", r.Vhost, "queue", r.Queue,
					"for", time.Since(lastRead).Round(time.Second), "stall_timeout", d.opts.StallTimeout, "err", err)
			}
			continue
		}
		if errors.Is(err, broker.ErrNoQueue) {
			srcReady = 0 // an auto-delete source queue went with its shovel
		}
		lastRead, lastWarned = time.Now(), time.Time{}
		bar.Set(r.Moved)
		if r.Moved != lastMoved {
			lastMoved, lastChange = r.Moved, time.Now()
		}
		if time.Since(lastRedelivery) >= redeliveryEvery {
			lastRedelivery = time.Now()
			q.countRedeliveries(ctx)
		}
		if err := q.unstick(ctx, srcReady, lastChange); err != nil {
			return err
		}

		if !r.Live && exact && d.lossSuspected(r, srcReady) {
			suspect++
		} else {
			suspect = 0
		}
		if suspect >= 2 {
			return q.stopForLoss(ctx)
		}

		done := false
		if srcReady == 0 {
			// Ready is exact but says nothing of messages the shovel holds
			// unacknowledged. The HTTP API's total (ready + unacked) lags,
			// but during a drain without producers it only falls, so a
			// stale zero cannot occur and a zero is the truth.
			total, err := d.counts.sourceTotal(ctx, r.Vhost, r.Queue)
			switch {
			case errors.Is(err, broker.ErrNoQueue) || broker.IsNotFound(err):
				total = 0
			case err != nil:
				slog.Warn("reading source totals", "err", err)
				continue
			}
			if d.opts.AllowLive {
				attached := d.producers.of(r.Vhost)
				switch {
				case len(attached) > 0:
					// Producers still publish to the source: keep
					// shovelling what they send; an idle queue is no stall.
					emptySince, lastChange = time.Time{}, time.Now()
					if time.Since(lastWaiting) >= 30*time.Second {
						lastWaiting = time.Now()
						slog.Info("queue is empty, waiting for the clients still attached to the source to move to the cluster",
							"vhost", r.Vhost, "queue", r.Queue, "clients", describeClients(attached))
					}
				case total != 0:
					emptySince = time.Time{}
				case emptySince.IsZero():
					emptySince = time.Now()
				}
				done = !emptySince.IsZero() && time.Since(emptySince) >= d.opts.Settle
			} else if r.Moved >= r.SourceBefore {
				// Everything arrived; what may remain is the shovel's acks
				// for the last confirms, sent the moment they come. A
				// quorum source's HTTP total lags by a 5s metrics tick, so
				// after a short grace the acks are taken as landed; should
				// one not have, the recheck after removal moves it again.
				if reachedAt.IsZero() {
					reachedAt = time.Now()
					slog.Debug("every message arrived", "vhost", w.vhost, "queue", w.name, "after", time.Since(start).Round(time.Millisecond))
				}
				done = total == 0 || time.Since(reachedAt) >= ackGrace
			}
		} else {
			emptySince = time.Time{}
		}

		if !done && time.Since(lastChange) > d.opts.StallTimeout {
			if srcReady > 0 {
				return fmt.Errorf("%w: no progress for %s with %d messages still on the source (%s); the shovel is left running: fix the cause and run the same command again, or `warren drain --abort`",
					ErrDrainFailed, d.opts.StallTimeout, srcReady, d.fleet.describe(ctx, r.Vhost, r.Shovel))
			}
			done = true // source empty; the counts below tell whether all arrived
		}
		if !done {
			continue
		}

		finishing := time.Now()
		again, err := q.finish(ctx)
		if err != nil || !again {
			bar.Set(r.Moved)
			slog.Debug("queue finished", "vhost", w.vhost, "queue", w.name, "after", time.Since(start).Round(time.Millisecond), "finish", time.Since(finishing).Round(time.Millisecond))
			return err
		}
		lastChange = time.Now()
	}
}

// pollInterval is how long a queue's watch loop waits before its next
// reading: Options.Poll while the queue is about to finish, has not moved
// yet, or takes live traffic; longer, up to a second (or Poll, when
// larger), while what is left takes far longer at the rate seen so far
// (moved in elapsed): a fifth of that time. Every reading is work for the
// brokers the drain keeps busy (passive declares on both sides, HTTP
// reads), and a drain of many queues reads each; a queue with a minute to
// go gains nothing from four readings a second. The last readings, which
// tell when the queue is done, come at Poll all the same.
func (d *drainer) pollInterval(r *QueueResult, moved int, elapsed time.Duration) time.Duration {
	lo, hi := d.opts.Poll, max(d.opts.Poll, time.Second)
	left := r.SourceBefore - r.Moved
	if r.Live || moved <= 0 || left <= 0 || elapsed <= 0 {
		return lo
	}
	eta := time.Duration(float64(elapsed) * float64(left) / float64(moved))
	return min(hi, max(lo, eta/5))
}

// observeTarget updates a queue's arrivals and its leader, and says
// whether the reading was exact. Without consumers on the target its depth
// only grows during a drain, so the highest reading so far is kept: a low
// reading is a measurement artefact, never a loss (lossSuspected looks at
// exact readings for that).
func (d *drainer) observeTarget(ctx context.Context, r *QueueResult) (bool, error) {
	rd, err := d.counts.watchDepth(ctx, r.Vhost, r.Queue, r.polledHTTP)
	if err != nil {
		return false, err
	}
	if rd.http {
		r.polledHTTP = time.Now()
	}
	if r.Live {
		r.TargetAfter = rd.depth // consumers may take messages: no monotony
	} else {
		r.TargetAfter = max(r.TargetAfter, rd.depth)
	}
	r.Moved = r.TargetAfter - r.TargetBefore
	if rd.exact && !r.Live {
		r.lastExact = rd.depth
	}
	if rd.leader != "" {
		r.leader = rd.leader
	}
	return rd.exact, nil
}

// lossSuspected reports whether the target holds fewer messages than the
// source has handed over: the source's ready messages were read first,
// then the target's, so at least SourceBefore - ready - Prefetch (what a
// shovel may hold unconfirmed) must have arrived. Fewer means the target
// dropped some (a limit or TTL set after the drain started).
func (d *drainer) lossSuspected(r *QueueResult, srcReady int) bool {
	floor := r.TargetBefore + r.SourceBefore - srcReady - d.opts.Prefetch
	return r.lastExact < floor
}

// queueRun is one queue's shovel through a drain: placed, started, paused
// for alarms, restarted when stuck, stopped.
type queueRun struct {
	d      *drainer
	w      workItem
	r      *QueueResult
	via    *broker.API
	paused bool
	// leader led the destination when the shovel was placed.
	leader string
	// restarts and lastRestart pace unstick.
	restarts    int
	lastRestart time.Time
}

// place chooses the node to declare the shovel through (see placement).
func (q *queueRun) place(ctx context.Context) {
	q.via, q.r.Placement, q.leader = q.d.placement(ctx, q.r.Vhost, q.r.Queue)
}

// unstick restarts a shovel that moves nothing while the source holds
// messages (see restartAfter).
func (q *queueRun) unstick(ctx context.Context, srcReady int, lastProgress time.Time) error {
	if q.paused || srcReady == 0 || q.restarts >= maxRestarts || time.Since(q.lastRestart) < restartAfter {
		return nil
	}
	idle := time.Since(lastProgress)
	var why string
	switch {
	case q.leader != "" && q.r.leader != "" && q.r.leader != q.leader && idle > leaderMoveGrace:
		why = fmt.Sprintf("its destination's leader moved from %s to %s", q.leader, q.r.leader)
	case idle > restartAfter:
		why = fmt.Sprintf("no progress for %s", idle.Round(time.Second))
	default:
		return nil
	}
	q.restarts++
	q.lastRestart = time.Now()
	slog.Warn("restarting a shovel that moves nothing", "vhost", q.r.Vhost, "queue", q.r.Queue, "why", why, "restart", q.restarts)
	if err := q.d.fleet.remove(ctx, q.r.Vhost, q.r.Shovel); err != nil {
		return err
	}
	q.place(ctx)
	return q.start(ctx)
}

// start makes the queue's shovel run (see fleet.ensureRunning), unless the
// target is in alarm.
func (q *queueRun) start(ctx context.Context) error {
	if len(q.d.alarms.state()) > 0 && q.pausable() {
		q.paused = true
		slog.Warn("queue waits for the target's alarms to clear", "vhost", q.r.Vhost, "queue", q.r.Queue)
		return nil
	}
	st, err := q.d.fleet.ensureRunning(ctx, q.via, q.d.spec(q.r.Vhost, q.r.Queue))
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%w: %v. Nothing was moved by it; run the same command again once the cause is fixed", ErrDrainFailed, err)
	}
	q.r.Node = st.Node
	return nil
}

// pausable: a shovel on the target ignores the target's alarms and must be
// stopped; one on the source is blocked by them like any publisher. An
// auto-delete source queue goes away, with its messages, when its last
// consumer (the shovel) stops, so its shovel keeps running.
func (q *queueRun) pausable() bool { return q.d.opts.Side == OnTarget && !q.w.autoDelete }

// alarms pauses or resumes the shovel as the target's alarms come and go,
// and reports whether the queue is paused.
func (q *queueRun) alarms(ctx context.Context) (bool, error) {
	active := q.d.alarms.state()
	switch {
	case len(active) > 0 && !q.paused:
		q.paused = true
		if q.pausable() {
			if err := q.d.fleet.remove(ctx, q.r.Vhost, q.r.Shovel); err != nil {
				return true, err
			}
		}
	case len(active) == 0 && q.paused:
		q.paused = false
		if q.pausable() {
			return false, q.start(ctx)
		}
	}
	return q.paused, nil
}

// countRedeliveries adds the source's redeliveries to the duplicate bound.
func (q *queueRun) countRedeliveries(ctx context.Context) {
	if red, err := q.d.counts.readRedeliveries(ctx, q.r.Vhost, q.r.Queue); err == nil {
		q.r.addRedeliveries(red)
	}
}

// stopForLoss stops the shovel of a queue whose target lost messages, so
// that the rest stay on the source, and counts the loss from the depths
// after the stop (the highest reading of the target, which the drain keeps
// otherwise, was taken before the target dropped messages).
func (q *queueRun) stopForLoss(ctx context.Context) error {
	r := q.r
	rmErr := q.d.fleet.remove(ctx, r.Vhost, r.Shovel)
	if n, err := q.d.counts.sourceReady(ctx, r.Vhost, r.Queue); err == nil {
		r.SourceAfter = n
	}
	if rd, err := q.d.counts.targetDepth(ctx, r.Vhost, r.Queue); err == nil {
		r.TargetAfter = rd.depth
		r.Moved = r.TargetAfter - r.TargetBefore
	}
	r.tally()
	stopped := "its shovel was stopped"
	if rmErr != nil {
		stopped = "stopping its shovel failed too (" + rmErr.Error() + ")"
	}
	return fmt.Errorf("%w: the target queue dropped messages during the drain: %d queued on the source before, %d on the target now (%d before), %d still on the source: %d lost (%s); %s. "+
		"Remove the limit or TTL on the target and run the same command again to move the rest; the drain keeps its first counts, so the loss stays reported",
		ErrNotConserved, r.SourceBefore, r.TargetAfter, r.TargetBefore, r.SourceAfter, r.Lost, q.limits(ctx), stopped)
}

// limits describes the destination's length and TTL limits, waiting a
// little for a policy the HTTP API does not show yet.
func (q *queueRun) limits(ctx context.Context) string {
	for i := 0; ; i++ {
		dst, err := q.d.dstAPI.GetQueue(ctx, q.r.Vhost, q.r.Queue)
		if err == nil {
			err = withPolicies(ctx, q.d.dstAPI, dst)
		}
		if err != nil {
			return "its limits cannot be read: " + err.Error()
		}
		var found []string
		for _, l := range []struct{ arg, key string }{{"x-max-length", "max-length"}, {"x-max-length-bytes", "max-length-bytes"},
			{"x-message-ttl", "message-ttl"}, {"x-expires", "expires"}} {
			if lim, ok := effective(dst, l.arg, l.key); ok {
				found = append(found, fmt.Sprintf("%s %d", lim.from, lim.value))
			}
		}
		if len(found) > 0 {
			return "its limits now: " + strings.Join(found, ", ")
		}
		if i == 5 {
			return "no length or TTL limit is visible on it (a consumer, or a limit removed since?)"
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return "its limits are unknown"
		}
	}
}

// finish removes the shovel of a queue that looks drained and judges its
// counts. Removing the shovel requeues anything unacknowledged, so it
// looks again afterwards: again reports that messages came back and the
// shovel was declared again.
func (q *queueRun) finish(ctx context.Context) (again bool, err error) {
	d, r := q.d, q.r
	if err := d.fleet.remove(ctx, r.Vhost, r.Shovel); err != nil {
		return false, err
	}
	srcReady, err := d.counts.sourceReady(ctx, r.Vhost, r.Queue)
	switch {
	case errors.Is(err, broker.ErrNoQueue):
		// An auto-delete queue goes with its last consumer, the shovel,
		// once it is empty: every message had arrived by then.
		r.Detail, r.SourceDeleted = "source queue auto-deleted when its shovel stopped", true
		srcReady = 0
	case err != nil:
		return false, err
	}
	if srcReady > 0 {
		slog.Info("messages came back to the source after the shovel stopped; continuing", "vhost", r.Vhost, "queue", r.Queue, "ready", srcReady)
		return true, q.start(ctx)
	}
	r.polledHTTP = time.Time{} // the final count: read both ways
	if _, err := d.observeTarget(ctx, r); err != nil {
		return false, err
	}
	r.SourceAfter = srcReady
	q.countRedeliveries(ctx)
	r.tally()
	if r.Duplicates > r.DuplicateBound {
		// The redeliver counter lags by the statistics interval: read it
		// again for a while before calling the duplicates unexplained.
		deadline := time.Now().Add(12 * time.Second)
		for r.Duplicates > r.DuplicateBound && time.Now().Before(deadline) {
			if err := sleep(ctx, time.Second); err != nil {
				return false, err
			}
			q.countRedeliveries(ctx)
		}
	}
	r.Status = StatusDrained
	switch {
	case d.opts.AllowLive:
		r.Detail = "live clients: counts include their traffic"
	case r.Lost > 0:
		r.Status = StatusFailed
		return false, fmt.Errorf("%w: %d queued on the source before the drain, %d arrived and %d are left there: %d lost. Check the target queue's limits (max-length, TTL) and consumers",
			ErrNotConserved, r.SourceBefore, r.Moved, r.SourceAfter, r.Lost)
	case r.Duplicates > r.DuplicateBound:
		r.Status = StatusFailed
		return false, fmt.Errorf("%w: %d more arrived than were queued, but the source redelivered only %d: another client published to the target queue %q",
			ErrNotConserved, r.Duplicates, r.DuplicateBound, r.Queue)
	case r.Duplicates > 0:
		r.Detail = fmt.Sprintf("warning: %d duplicates (bound %d: messages the source redelivered after a shovel restart; at-least-once)", r.Duplicates, r.DuplicateBound)
	}
	return false, nil
}
