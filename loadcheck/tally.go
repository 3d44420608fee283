package loadcheck

import (
	"sync"
	"sync/atomic"
	"time"
)

// tally counts a round's messages. Publishing and consuming goroutines
// update it at once; progress reads it while they do.
type tally struct {
	published, confirmed, failed atomic.Int64
	consumed                     atomic.Int64 // deliveries, duplicates included
	firstErr                     atomic.Pointer[string]
	lastConfirm                  atomic.Int64 // Unix nanoseconds

	mu      sync.Mutex
	seen    []uint64 // bit per sequence number received
	unique  int64
	samples []time.Duration
	last    time.Time // the latest delivery
}

// fail counts a message Publish gave up on, keeping the first reason.
func (t *tally) fail(err error) {
	t.failed.Add(1)
	msg := err.Error()
	t.firstErr.CompareAndSwap(nil, &msg)
}

// confirm counts a message the broker confirmed.
func (t *tally) confirm() {
	t.confirmed.Add(1)
	now := time.Now().UnixNano()
	for {
		last := t.lastConfirm.Load()
		if now <= last || t.lastConfirm.CompareAndSwap(last, now) {
			return
		}
	}
}

// lastConfirmed is when the latest confirm arrived (zero before any).
func (t *tally) lastConfirmed() time.Time {
	if n := t.lastConfirm.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// received records a delivery of message seq, latency after it was sent.
func (t *tally) received(seq uint64, latency time.Duration, at time.Time) {
	t.consumed.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	word, bit := seq/64, uint64(1)<<(seq%64)
	for uint64(len(t.seen)) <= word {
		t.seen = append(t.seen, make([]uint64, len(t.seen)+1024)...)
	}
	if t.seen[word]&bit == 0 {
		t.seen[word] |= bit
		t.unique++
		t.samples = append(t.samples, latency)
	}
	if at.After(t.last) {
		t.last = at
	}
}

// uniqueCount is how many distinct messages arrived.
func (t *tally) uniqueCount() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unique
}

// lastDelivery is when the latest message arrived (zero before any).
func (t *tally) lastDelivery() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// snapshot is the counts so far.
func (t *tally) snapshot(elapsed time.Duration) Snapshot {
	return Snapshot{Elapsed: elapsed, Published: t.published.Load(), Confirmed: t.confirmed.Load(), Consumed: t.consumed.Load()}
}

// latency computes the percentiles of the first delivery of each message.
func (t *tally) latency() Latency {
	t.mu.Lock()
	defer t.mu.Unlock()
	return latencyOf(t.samples)
}
