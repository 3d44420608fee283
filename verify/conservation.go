package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/broker"
)

// QueueCount is one queue's counts as a drain recorded them: the "queues"
// entries of the drain's JSON report (`warren drain -o json`).
type QueueCount struct {
	Vhost string `json:"vhost"`
	Queue string `json:"queue"`
	// SourceBefore and TargetBefore are the queue's depths on each side
	// before the drain moved anything.
	SourceBefore int `json:"source_before"`
	TargetBefore int `json:"target_before"`
	// Moved is how many messages the drain saw arrive on the target.
	Moved int `json:"moved"`
	// SourceDeleted: the source queue was auto-delete and went away with
	// the drain's shovel, so the source's export no longer has it.
	SourceDeleted bool `json:"source_deleted,omitempty"`
	// DuplicateBound is how many messages the source redelivered during
	// the drain: at most that many can have arrived twice.
	DuplicateBound int `json:"duplicate_bound"`
	// Live: the drain ran with live clients, whose traffic the counts
	// include, so they prove nothing.
	Live bool `json:"live,omitempty"`
}

// ReadDrainReport reads the per-queue counts from a drain's JSON report.
// Fields other than "queues" and its counts are ignored.
func ReadDrainReport(r io.Reader) ([]QueueCount, error) {
	var doc struct {
		Queues *[]QueueCount `json:"queues"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("drain report is not the JSON `warren drain -o json` writes: %w", err)
	}
	if doc.Queues == nil {
		return nil, errors.New(`drain report has no "queues" array; pass the JSON report of warren drain`)
	}
	for i, q := range *doc.Queues {
		if q.Vhost == "" || q.Queue == "" {
			return nil, fmt.Errorf("drain report: queue entry %d has no vhost or queue name", i+1)
		}
		if q.SourceBefore < 0 || q.TargetBefore < 0 || q.Moved < 0 || q.DuplicateBound < 0 {
			return nil, fmt.Errorf("drain report: %s/%s has a negative count", q.Vhost, q.Queue)
		}
	}
	return *doc.Queues, nil
}

// LoadDrainReport reads a drain report file (see ReadDrainReport).
func LoadDrainReport(path string) ([]QueueCount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open drain report: %w", err)
	}
	defer f.Close()
	counts, err := ReadDrainReport(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return counts, nil
}

// conservation checks, for every queue the drain moved, that no message
// is missing and that no more arrived than the drain's redeliveries
// explain: the target now holds what it held before plus what the source
// held (and, when the source is given, what the source still holds counts
// too), give or take the duplicates. The shovels are at-least-once: after
// a fault, a message the target had confirmed but the source had not seen
// acknowledged is delivered again, and the drain bounds how many by the
// source's redeliver counter. Within that bound, duplicates are a warning.
// Depths come from passive declares, which the queue answers with its
// current count; the HTTP API's counts lag by the stats interval. Consumers
// on the target change depths, so this check belongs right after the
// drain, before applications attach.
func (s *session) conservation(ctx context.Context) {
	if s.opts.DrainReport == nil {
		s.check(ctx, AreaConservation, "conservation", func() outcome {
			return skipf("no drain report given (--drain-report FILE)")
		})
		return
	}
	if len(s.opts.DrainReport) == 0 {
		s.check(ctx, AreaConservation, "conservation", func() outcome { return skipf("the drain report lists no queues") })
		return
	}
	byVhost := map[string][]QueueCount{}
	var vhosts []string
	for _, q := range s.opts.DrainReport {
		if _, ok := byVhost[q.Vhost]; !ok {
			vhosts = append(vhosts, q.Vhost)
		}
		byVhost[q.Vhost] = append(byVhost[q.Vhost], q)
	}
	sort.Strings(vhosts)
	for _, vhost := range vhosts {
		conn, connErr := s.dialAny(ctx, vhost)
		var src *broker.Depths
		if s.opts.Source != nil {
			ep := *s.opts.Source
			src = broker.NewDepths(ep)
		}
		for _, q := range byVhost[vhost] {
			s.check(ctx, AreaConservation, fmt.Sprintf("conservation %s/%s", q.Vhost, q.Queue), func() outcome {
				if connErr != nil {
					return failf("%v", connErr)
				}
				left := 0
				if src != nil && !q.SourceDeleted {
					n, _, err := src.Depth(ctx, q.Vhost, q.Queue)
					if err != nil && !errors.Is(err, broker.ErrNoQueue) {
						return failf("read what the source still holds: %v", err)
					}
					left = n
				}
				return conserved(conn, q, left)
			})
		}
		if src != nil {
			src.Close()
		}
		if conn != nil {
			_ = conn.Close()
		}
	}
}

// dialAny connects to the first target node that accepts.
func (s *session) dialAny(ctx context.Context, vhost string) (*amqp.Connection, error) {
	var errs []error
	for i := range s.opts.Target.AMQP {
		c, err := s.opts.Target.DialNode(ctx, i, vhost)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// conserved judges one queue: left is what the source still holds.
func conserved(conn *amqp.Connection, q QueueCount, left int) outcome {
	if q.Live {
		return skipf("the drain ran with live clients (--allow-live): their traffic is in the counts, which prove nothing")
	}
	// A failed passive declare closes the channel, so each queue gets one.
	ch, err := conn.Channel()
	if err != nil {
		return failf("open a channel: %v", err)
	}
	defer ch.Close()
	got, err := ch.QueueDeclarePassive(q.Queue, true, false, false, false, nil)
	if err != nil {
		var aerr *amqp.Error
		if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
			return failf("the queue does not exist on the target, so the %d messages the drain moved are not there", q.Moved)
		}
		return failf("read the queue's depth: %v", err)
	}
	want := q.TargetBefore + q.SourceBefore
	have := got.Messages + left
	where := fmt.Sprintf("the target holds %d", got.Messages)
	if left > 0 {
		where += fmt.Sprintf(" and the source still %d", left)
	}
	switch extra := have - want; {
	case q.Moved+left < q.SourceBefore:
		return failf("the drain moved %d of the %d messages the source held (%d still there): its report and the queue disagree, %s", q.Moved, q.SourceBefore, left, where)
	case extra < 0:
		return failf("%d lost: %s, want %d (%d on the target before the drain + %d from the source)", -extra, where, want, q.TargetBefore, q.SourceBefore)
	case extra > q.DuplicateBound:
		return failf("%d more than expected: %s, want %d (%d before + %d from the source), and the source redelivered only %d during the drain, so the shovels cannot have caused them all: did another client publish to the queue?",
			extra, where, want, q.TargetBefore, q.SourceBefore, q.DuplicateBound)
	case extra > 0:
		return warnf("%d duplicates, within the bound of %d (messages the source redelivered after a shovel restart; at-least-once): %s = %d before + %d from the source + %d",
			extra, q.DuplicateBound, where, q.TargetBefore, q.SourceBefore, extra)
	}
	return passf("%s = %d before + %d from the source; moved %d", where, q.TargetBefore, q.SourceBefore, q.Moved)
}
