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
)

// QueueResult is one queue's drain, as reported and as kept in the state
// file. The JSON field names are a contract: `warren verify --drain-report`
// reads them.
type QueueResult struct {
	Vhost  string `json:"vhost"`
	Queue  string `json:"queue"`
	Shovel string `json:"shovel"`
	// SourceBefore and TargetBefore are the depths seen before the shovel
	// was declared; a resumed run keeps the first run's values.
	SourceBefore int `json:"source_before"`
	TargetBefore int `json:"target_before"`
	// Moved is what arrived at the target: TargetAfter - TargetBefore.
	Moved       int     `json:"moved"`
	TargetAfter int     `json:"target_after"`
	Status      string  `json:"status"`
	Detail      string  `json:"detail,omitempty"`
	Seconds     float64 `json:"seconds"`
	Resumed     bool    `json:"resumed,omitempty"`
	// SourceDeleted: the source queue was auto-delete and went away with
	// its last consumer, the shovel, once empty.
	SourceDeleted bool `json:"source_deleted,omitempty"`
	Live          bool `json:"live,omitempty"`
}

// Conserved reports whether every message seen on the source arrived.
func (r QueueResult) Conserved() bool { return r.Moved == r.SourceBefore }

// Report is the outcome of a drain.
type Report struct {
	Side     Side          `json:"side"`
	Parallel int           `json:"parallel"`
	Queues   []QueueResult `json:"queues"`
	// Messages is the total moved; Rate is Messages per second of wall time.
	Messages int     `json:"messages"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"rate"`
	// Skipped lists queues left alone, with the reason (e.g. exclusive).
	Skipped []string `json:"skipped,omitempty"`
}

func (r *Report) finish(start time.Time) {
	r.Seconds = time.Since(start).Seconds()
	r.Messages = 0
	for _, q := range r.Queues {
		r.Messages += q.Moved
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
