package definitions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
)

// batchSize bounds the objects of one POST /api/definitions, so that each
// request finishes well within the HTTP timeout even when every object is a
// quorum queue that the cluster must start on three nodes.
const batchSize = 200

// ImportResult is what Import did.
type ImportResult struct {
	// Check is the check Import ran first; its object statuses are as
	// before the import.
	Check *CheckResult `json:"check"`
	// Created counts the objects created, per kind.
	Created map[Kind]int `json:"created"`
	// Identical and Skipped count the objects left alone.
	Identical int `json:"identical"`
	Skipped   int `json:"skipped"`
	// Confirmed counts the planned objects found on the target, as
	// planned, when it was read back afterwards.
	Confirmed int `json:"confirmed"`
	// Placement says through which nodes the new queues were declared
	// and how the quorum leaders are spread (see QueuePlacement); nil
	// when no queue was new.
	Placement *QueuePlacement `json:"placement,omitempty"`
	Duration  time.Duration   `json:"duration_ns"`
	// RolledBack is set when the import failed part-way: what it created
	// and removed again.
	RolledBack *Rollback `json:"rolled_back,omitempty"`
}

// Total is the number of objects created.
func (r *ImportResult) Total() int {
	n := 0
	for _, c := range r.Created {
		n += c
	}
	return n
}

// Import applies the plan to the target: it runs Check (and stops, with
// nothing changed, on objects the target would refuse or that refer to
// missing ones, failed preflight checks, blockers, or conflicts not
// skipped), creates the new objects kind by kind in dependency order
// (vhosts, users, permissions, parameters, policies, exchanges, queues,
// bindings), then reads the target back and confirms that every planned
// object is there as planned. New queues are declared spread over the
// running nodes (see QueuePlacement). Objects the target already holds
// identically are not touched, so a second Import changes nothing.
//
// It is all or nothing: when the target still refuses an object part-way,
// or does not hold what it accepted, Import removes every object this run
// created (never one that existed before) and its error says which object
// was refused, what was rolled back and what is left (ImportResult.RolledBack).
//
// The result is non-nil whenever the check ran, also on error.
func Import(ctx context.Context, target *broker.API, plan *Plan) (*ImportResult, error) {
	start := time.Now()
	ep := target.Endpoint()
	chk, err := plan.Check(ctx, target)
	res := &ImportResult{Check: chk, Created: map[Kind]int{}}
	if err != nil {
		return res, err
	}
	res.Identical, res.Skipped = chk.Count(StatusIdentical), chk.Count(StatusSkipped)

	status := map[Kind]map[string]Status{}
	for _, o := range chk.Objects {
		if status[o.Kind] == nil {
			status[o.Kind] = map[string]Status{}
		}
		status[o.Kind][o.ID] = o.Status
	}
	want := plan.want
	// Everything sent is recorded first, so that a failure part-way can
	// remove what this run created and nothing else (see rollback).
	sent := newJournal(chk)
	for _, k := range Kinds {
		var batch []Object
		for _, o := range want.Sections[k] {
			if status[k][ID(k, o)] == StatusNew {
				batch = append(batch, o)
			}
		}
		if k == KindQueue && len(batch) > 0 {
			sent.sending(k, batch)
			placed, n, err := postQueues(ctx, target, batch)
			res.Placement = placed
			res.Created[k] += n
			if err != nil {
				return res, res.rollBack(ctx, target, sent, k, batch, fmt.Sprintf("import %s into %s", section[k], ep.Name), err, true)
			}
			batch = nil
		}
		for len(batch) > 0 {
			n := min(len(batch), batchSize)
			sent.sending(k, batch[:n])
			if err := post(ctx, target, k, batch[:n]); err != nil {
				return res, res.rollBack(ctx, target, sent, k, batch[:n], fmt.Sprintf("import %s into %s", section[k], ep.Name), err, true)
			}
			res.Created[k] += n
			batch = batch[n:]
		}
		if res.Created[k] > 0 {
			slog.Debug("imported definitions", "kind", k, "count", res.Created[k], "target", ep.Name)
		}
	}

	// Read back: every planned object must now be there as planned, except
	// the conflicts the user chose to leave.
	got, err := export(ctx, target)
	if err != nil {
		return res, fmt.Errorf("read %s back after import (the import itself was accepted; run the same command again to confirm it): %w", ep.Name, err)
	}
	var missing []string
	for _, d := range Compare(want, got) {
		if d.Type == Unexpected || status[d.Kind][d.ID] == StatusSkipped ||
			(status[d.Kind][d.ID] == StatusIdentical && cosmetic(d.Kind, d.Fields)) {
			continue
		}
		missing = append(missing, d.String())
	}
	res.Confirmed = want.Len() - len(missing) - res.Skipped
	res.Duration = time.Since(start)
	if len(missing) > 0 {
		return res, res.rollBack(ctx, target, sent, "", nil, fmt.Sprintf("import into %s", ep.Name),
			fmt.Errorf("read back, %s does not hold %d planned object(s) as planned:\n  %s", ep.Name, len(missing), strings.Join(missing, "\n  ")), false)
	}
	return res, nil
}

// rollBack undoes a failed import (see journal.rollback) and returns the
// error that says what failed, what was undone and what is left.
func (res *ImportResult) rollBack(ctx context.Context, target *broker.API, sent *journal, k Kind, batch []Object, what string, cause error, refused bool) error {
	rb := sent.rollback(ctx, target, k, batch)
	res.RolledBack = rb
	if len(rb.Left) == 0 {
		res.Created = map[Kind]int{}
	}
	return rb.failure(what, cause, refused)
}

// post sends objects of one kind as a definitions document. Objects carry
// their vhost, so one document may span vhosts.
func post(ctx context.Context, target *broker.API, k Kind, objs []Object) error {
	if k == KindVhost {
		objs = withMetadata(objs)
	}
	doc := map[string][]Object{section[k]: objs}
	err := target.PostDefinitions(ctx, doc)
	var se *broker.StatusError
	if errors.As(err, &se) {
		return fmt.Errorf("the target refused %s: %s", describeBatch(k, objs), se.Reason())
	}
	return err
}

func describeBatch(k Kind, objs []Object) string {
	if len(objs) == 1 {
		return fmt.Sprintf("%s %s", k, ID(k, objs[0]))
	}
	// The broker's answer does not say which object it refused: name
	// them all (Import then says which the target did not create).
	ids := make([]string, len(objs))
	for i, o := range objs {
		ids[i] = ID(k, o)
	}
	return fmt.Sprintf("one of %d %s (%s)", len(objs), section[k], limitList(ids, 10))
}

// withMetadata copies a vhost's description, tags and default queue type
// into its "metadata" object as well: RabbitMQ 3.10's definitions import
// reads default_queue_type only from there (and later versions read both).
func withMetadata(vhosts []Object) []Object {
	out := make([]Object, len(vhosts))
	for i, v := range vhosts {
		meta := v.Map("metadata")
		for _, f := range []string{"description", "tags", "default_queue_type"} {
			if _, ok := meta[f]; !ok && v.Has(f) {
				meta[f] = v.Value(f)
			}
		}
		c := v.Clone()
		if len(meta) > 0 {
			c.Set("metadata", meta)
		}
		out[i] = c
	}
	return out
}
