package shovel

import "time"

// Queue statuses in a Report.
const (
	StatusDrained = "drained" // every message arrived; shovel removed
	StatusFailed  = "failed"  // see Detail; the shovel may be left running to finish
	StatusPending = "running" // in the state file: a run was interrupted here
	// StatusInterrupted: the run was stopped (Ctrl-C, SIGTERM) before this
	// queue finished. A shovel already started keeps moving messages; the
	// same command run again resumes with the first run's counts.
	StatusInterrupted = "interrupted"
	// StatusAborted: `warren drain --abort` removed the queue's shovel. The
	// first run's counts are kept: the next drain resumes with them, so
	// duplicates the abort caused are still counted.
	StatusAborted = "aborted"
)

// QueueResult is one queue's drain, as reported and as kept in the state
// file. The JSON field names are a contract: `warren verify --drain-report`
// reads them.
type QueueResult struct {
	Vhost  string `json:"vhost"`
	Queue  string `json:"queue"`
	Shovel string `json:"shovel"`
	// SourceBefore and TargetBefore are the depths seen before the first
	// shovel was declared; every later run (resume, after an abort) keeps
	// them until the queue is drained.
	SourceBefore int `json:"source_before"`
	TargetBefore int `json:"target_before"`
	// Moved is what arrived at the target: TargetAfter - TargetBefore.
	Moved       int `json:"moved"`
	TargetAfter int `json:"target_after"`
	// SourceAfter is what the source still held at the end (0 once drained).
	SourceAfter int `json:"source_after"`
	// Lost is what neither side holds: SourceBefore - Moved - SourceAfter,
	// when positive. Any loss fails the drain.
	Lost int `json:"lost"`
	// Duplicates is what arrived more than once: Moved + SourceAfter -
	// SourceBefore, when positive. The shovels are at-least-once: after a
	// connection or node failure, a message the target had confirmed but
	// the source had not yet seen acknowledged is delivered again.
	Duplicates int `json:"duplicates"`
	// DuplicateBound is how many messages the source redelivered during
	// the drain (its queue's redeliver counter): a message can only
	// arrive twice if it was delivered twice, so Duplicates above it
	// cannot be explained by the shovels and fail the queue.
	DuplicateBound int `json:"duplicate_bound"`
	// RedeliverSeen is the source queue's redeliver counter as last read,
	// kept so that a resumed run goes on counting from it.
	RedeliverSeen int `json:"redeliver_seen"`
	// SourceUptime is the source node's uptime (ms) at that reading: a
	// lower one later means the node restarted and its counter with it.
	SourceUptime int64 `json:"source_uptime,omitempty"`
	// Node is the target node the shovel ran on (its destination queue's
	// leader when placement worked), or the source node.
	Node string `json:"node,omitempty"`
	// Placement says how the node was chosen: "leader" (declared through
	// the API of the destination queue's leader), or why it fell back.
	Placement string `json:"placement,omitempty"`
	// MovedThisRun is what arrived during this run (Moved counts from the
	// first run's baseline).
	MovedThisRun int     `json:"moved_this_run"`
	Status       string  `json:"status"`
	Detail       string  `json:"detail,omitempty"`
	Seconds      float64 `json:"seconds"`
	Resumed      bool    `json:"resumed,omitempty"`
	// SourceDeleted: the source queue was auto-delete and went away with
	// its last consumer, the shovel, once empty.
	SourceDeleted bool `json:"source_deleted,omitempty"`
	Live          bool `json:"live,omitempty"`
	// Carried: drained by an earlier run and not yet verified; reported so
	// that verification still checks its counts.
	Carried bool `json:"carried,omitempty"`
	// Verified: a verification of the target passed this queue's counts;
	// later runs no longer report it.
	Verified bool `json:"verified,omitempty"`

	// lastExact is the last target depth read exactly (see lossSuspected).
	lastExact int
	// leader is the destination's leader as last read.
	leader string
	// polledHTTP is when the watch loop last read the target queue
	// through the HTTP API (see counts.watchDepth).
	polledHTTP time.Time
}

// Conserved reports whether no message is missing.
func (r QueueResult) Conserved() bool { return r.Lost == 0 }

// tally sets Lost and Duplicates from the counts.
func (r *QueueResult) tally() {
	r.Lost, r.Duplicates = 0, 0
	if r.Live {
		return // live clients move messages too: counts prove nothing
	}
	switch d := r.Moved + r.SourceAfter - r.SourceBefore; {
	case d < 0:
		r.Lost = -d
	case d > 0:
		r.Duplicates = d
	}
}

// Report is the outcome of a drain.
type Report struct {
	Side     Side          `json:"side"`
	Parallel int           `json:"parallel"`
	Queues   []QueueResult `json:"queues"`
	// Messages is what arrived during this run; Rate is Messages per
	// second of this run's wall time.
	Messages int     `json:"messages"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"rate"`
	// Duplicates and Lost add up the queues'.
	Duplicates int `json:"duplicates"`
	Lost       int `json:"lost"`
	// Skipped lists queues left alone, with the reason (e.g. exclusive).
	Skipped []string `json:"skipped,omitempty"`
	// Placement notes, once per node, where shovels could not be placed on
	// their queue's leader and why.
	Placement []string `json:"placement,omitempty"`
	// Pauses lists the resource alarms the drain waited out.
	Pauses []string `json:"pauses,omitempty"`
}

func (r *Report) finish(start time.Time) {
	r.Seconds = time.Since(start).Seconds()
	r.Messages, r.Duplicates, r.Lost = 0, 0, 0
	for _, q := range r.Queues {
		r.Messages += q.MovedThisRun
		r.Duplicates += q.Duplicates
		r.Lost += q.Lost
	}
	if r.Seconds > 0 {
		r.Rate = float64(r.Messages) / r.Seconds
	}
}

// Failed returns the queues that did not drain cleanly.
func (r *Report) Failed() []QueueResult {
	var out []QueueResult
	for _, q := range r.Queues {
		if q.Status != StatusDrained && q.Status != StatusInterrupted {
			out = append(out, q)
		}
	}
	return out
}
