package shovel

import (
	"context"
	"time"

	"github.com/warrenmq/warren/broker"
)

// counts reads the queue depths and counters a drain judges by.
//
// Depths come from passive declares, which are current, and from the HTTP
// API, whose counts lag by the statistics interval. A quorum queue answers
// a passive declare with 0 when its leader does not reply within 250ms
// (rabbit_quorum_queue:stat/2), so for the target the larger of the two is
// taken: each can only be too low while a drain fills the queue.
type counts struct {
	src, dst       *broker.Depths
	srcAPI, dstAPI *broker.API
}

// sourceReady is the source queue's ready messages, now.
func (c *counts) sourceReady(ctx context.Context, vhost, queue string) (int, error) {
	n, _, err := c.src.Depth(ctx, vhost, queue)
	return n, err
}

// sourceTotal is ready + unacknowledged as the HTTP API last saw it; -1
// when it has no statistics for the queue yet.
func (c *counts) sourceTotal(ctx context.Context, vhost, queue string) (int, error) {
	q, err := c.srcAPI.GetQueue(ctx, vhost, queue)
	if err != nil {
		return 0, err
	}
	n, ok := q.Count()
	if !ok {
		return -1, nil
	}
	return n, nil
}

// targetReading is one reading of a target queue.
type targetReading struct {
	depth int
	// exact: the passive reading can be trusted as current (any classic
	// reading, or a quorum reading above 0).
	exact bool
	// leader is the node leading the queue (a classic queue's node), ""
	// when the HTTP API did not answer or was not asked.
	leader string
	// http: the HTTP API was read (and leader set when it answered).
	http bool
}

// httpEvery is how often the drain's watch loop reads a target queue
// through the HTTP API while its passive declares answer with a count. The
// HTTP reading is what tells a quorum queue's leader (a moved leader makes
// the drain restart a stuck shovel after leaderMoveGrace) and what covers a
// quorum queue whose passive declare answers 0; for the count it adds
// nothing then (it lags, the passive count is current). Asked on every
// poll, it was most of the drain's load on the target: one management
// query per queue every 250 ms, answered by the busy leader.
const httpEvery = 2 * time.Second

// watchDepth is targetDepth for the watch loop: the passive declare's count
// alone when it is above 0 (current, so exact for any queue type) and the
// HTTP API was read less than httpEvery ago (since lastHTTP); the full
// reading otherwise.
func (c *counts) watchDepth(ctx context.Context, vhost, queue string, lastHTTP time.Time) (targetReading, error) {
	if time.Since(lastHTTP) < httpEvery {
		if n, _, err := c.dst.Depth(ctx, vhost, queue); err == nil && n > 0 {
			return targetReading{depth: n, exact: true}, nil
		}
	}
	return c.targetDepth(ctx, vhost, queue)
}

// targetDepth reads a target queue's depth as the larger of the passive
// declare and the HTTP count.
func (c *counts) targetDepth(ctx context.Context, vhost, queue string) (targetReading, error) {
	passive, _, perr := c.dst.Depth(ctx, vhost, queue)
	q, herr := c.dstAPI.GetQueue(ctx, vhost, queue)
	if perr != nil && herr != nil {
		return targetReading{}, perr
	}
	if herr == nil {
		http, _ := q.Count()
		leader := q.Leader
		if leader == "" {
			leader = q.Node
		}
		return targetReading{depth: max(passive, http), exact: perr == nil && (q.Type != "quorum" || passive > 0), leader: leader, http: true}, nil
	}
	return targetReading{depth: passive}, nil
}

// settledTargetDepth reads a target queue that nothing writes to yet a few
// times and keeps the largest reading, so one spurious zero cannot become
// the baseline.
func (c *counts) settledTargetDepth(ctx context.Context, vhost, queue string) (int, error) {
	best := -1
	var lastErr error
	for i := 0; i < 3; i++ {
		if i > 0 {
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return 0, err
			}
		}
		rd, err := c.targetDepth(ctx, vhost, queue)
		if err == nil {
			best = max(best, rd.depth)
		} else {
			lastErr = err
		}
	}
	if best < 0 {
		return 0, lastErr
	}
	return best, nil
}

// redeliveries is the source queue's redeliver counter and the uptime of
// the source node that counts it. Counters restart from 0 when the node
// restarts; the uptime tells.
type redeliveries struct {
	count  int
	uptime int64 // ms
}

// readRedeliveries reads the source queue's redeliver counter.
func (c *counts) readRedeliveries(ctx context.Context, vhost, queue string) (redeliveries, error) {
	q, err := c.srcAPI.GetQueue(ctx, vhost, queue)
	if err != nil {
		return redeliveries{}, err
	}
	r := redeliveries{count: q.MessageStats.Redeliver}
	if n, err := c.srcAPI.GetNode(ctx, q.Node); err == nil {
		r.uptime = n.Uptime
	}
	return r, nil
}

// addRedeliveries adds what the source redelivered since the last reading
// to the queue's duplicate bound.
func (r *QueueResult) addRedeliveries(now redeliveries) {
	switch {
	case r.SourceUptime > 0 && now.uptime > 0 && now.uptime < r.SourceUptime:
		// The source restarted: its counter began again at 0.
		r.DuplicateBound += now.count
	case now.count >= r.RedeliverSeen:
		r.DuplicateBound += now.count - r.RedeliverSeen
	default:
		r.DuplicateBound += now.count
	}
	r.RedeliverSeen, r.SourceUptime = now.count, now.uptime
}
