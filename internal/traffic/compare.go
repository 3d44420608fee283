package traffic

import (
	"fmt"
	"slices"
	"time"
)

// Figures are what a run of producers and consumers did.
type Figures struct {
	// Published counts distinct message ids the broker confirmed.
	Published int
	// Consumed counts distinct message ids received; Deliveries counts
	// every reception, duplicates included.
	Consumed, Deliveries int
	// Lost counts confirmed ids never received: the figure that must be 0.
	Lost int
	// Duplicates counts receptions beyond the first of each id.
	Duplicates int
	// Unconfirmed counts ids received but never confirmed: published when
	// a connection broke before the confirm arrived (at-least-once delivery
	// allows that; it is not a loss).
	Unconfirmed int
	// LongestPublishStall is the longest time between two consecutive
	// confirmations, over every producer ledger and across restarts.
	LongestPublishStall time.Duration
	// LongestConsumeGap is the same for receptions.
	LongestConsumeGap time.Duration
	// LostIDs lists up to 20 lost ids, for the failure message.
	LostIDs []string
}

// Compare computes the figures from producer and consumer events.
func Compare(produced, consumed []Event) Figures {
	var f Figures
	confirmed := map[string]bool{}
	var pubTimes, recvTimes []time.Time
	for _, e := range produced {
		if e.Kind == Confirmed {
			confirmed[e.ID] = true
			pubTimes = append(pubTimes, e.At)
		}
	}
	received := map[string]int{}
	for _, e := range consumed {
		if e.Kind == Received {
			received[e.ID]++
			f.Deliveries++
			recvTimes = append(recvTimes, e.At)
		}
	}
	f.Published, f.Consumed = len(confirmed), len(received)
	for id := range confirmed {
		if received[id] == 0 {
			f.Lost++
			if len(f.LostIDs) < 20 {
				f.LostIDs = append(f.LostIDs, id)
			}
		}
	}
	slices.Sort(f.LostIDs)
	for id, n := range received {
		f.Duplicates += n - 1
		if !confirmed[id] {
			f.Unconfirmed++
		}
	}
	f.LongestPublishStall, f.LongestConsumeGap = longestGap(pubTimes), longestGap(recvTimes)
	return f
}

// CompareFiles reads producer and consumer ledgers and compares them.
func CompareFiles(producers, consumers []string) (Figures, error) {
	p, err := Read(producers...)
	if err != nil {
		return Figures{}, err
	}
	c, err := Read(consumers...)
	if err != nil {
		return Figures{}, err
	}
	return Compare(p, c), nil
}

func longestGap(ts []time.Time) time.Duration {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	var longest time.Duration
	for i := 1; i < len(ts); i++ {
		if d := ts[i].Sub(ts[i-1]); d > longest {
			longest = d
		}
	}
	return longest
}

// String renders the figures on one line.
func (f Figures) String() string {
	s := fmt.Sprintf("published %d, consumed %d (%d deliveries), lost %d, duplicates %d, unconfirmed but delivered %d, longest publish stall %s, longest consume gap %s",
		f.Published, f.Consumed, f.Deliveries, f.Lost, f.Duplicates, f.Unconfirmed,
		f.LongestPublishStall.Round(time.Millisecond), f.LongestConsumeGap.Round(time.Millisecond))
	if f.Lost > 0 {
		s += fmt.Sprintf("; lost ids (first %d): %v", len(f.LostIDs), f.LostIDs)
	}
	return s
}
