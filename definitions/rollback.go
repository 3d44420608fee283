package definitions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
)

// Rollback is what a failed import undid: the objects this run had
// created, removed again, so that the target is as it was before.
type Rollback struct {
	// Removed names each object removed ("vhost shop", "queue shop/jobs").
	// Objects inside a removed vhost went with it and are not listed.
	Removed []string `json:"removed"`
	// Left names the objects this run created that could not be removed,
	// with the reason: they need removing by hand.
	Left []string `json:"left,omitempty"`
	// NotCreated names the objects of the refused request that the target
	// did not create: the refused object is among them.
	NotCreated []string `json:"not_created,omitempty"`
}

// journal records what an import sent, so that a failure part-way can be
// undone: only objects that were new when the import was checked are
// sent, so any of them found on the target afterwards is this run's.
type journal struct {
	chk  *CheckResult
	sent map[Kind][]Object
}

func newJournal(chk *CheckResult) *journal { return &journal{chk: chk, sent: map[Kind][]Object{}} }

// sending records objects about to be posted.
func (j *journal) sending(k Kind, objs []Object) { j.sent[k] = append(j.sent[k], objs...) }

// rollbackRounds and rollbackGap bound the rollback's passes: RabbitMQ
// imports a document's objects concurrently and answers on the first
// failure, so objects of a refused request can still appear for a moment
// after the answer.
const (
	rollbackRounds = 6
	rollbackGap    = 300 * time.Millisecond
)

// rollback removes every object this run sent that the target now holds,
// in reverse dependency order, until a pass finds none (at least two
// passes). failed is the refused request's objects, to name those the
// target did not create. It never removes an object that existed before
// the import: those were never sent.
func (j *journal) rollback(ctx context.Context, target *broker.API, failedKind Kind, failed []Object) *Rollback {
	rb := &Rollback{}
	removed := map[string]bool{}
	left := map[string]string{}
	for round := 0; round < rollbackRounds; round++ {
		got, err := export(ctx, target)
		if err != nil {
			rb.Left = []string{fmt.Sprintf("every object this run created (the target could not be read back: %v)", err)}
			return rb
		}
		if round == 0 {
			have := index(failedKind, got.Sections[failedKind])
			for _, o := range failed {
				if _, ok := have[ID(failedKind, o)]; !ok {
					rb.NotCreated = append(rb.NotCreated, ID(failedKind, o))
				}
			}
		}
		found := j.present(got)
		if len(found) == 0 && round > 0 {
			break
		}
		for _, f := range found {
			name := fmt.Sprintf("%s %s", f.kind, f.id)
			if err := j.remove(ctx, target, f); err != nil {
				left[name] = err.Error()
				continue
			}
			delete(left, name)
			if !removed[name] {
				removed[name] = true
				rb.Removed = append(rb.Removed, name)
			}
		}
		select {
		case <-ctx.Done():
			round = rollbackRounds
		case <-time.After(rollbackGap):
		}
	}
	for name, why := range left {
		rb.Left = append(rb.Left, name+": "+why)
	}
	slices.Sort(rb.Left)
	slog.Info("rolled back a failed import", "removed", len(rb.Removed), "left", len(rb.Left))
	return rb
}

type sentObject struct {
	kind Kind
	id   string
	obj  Object
}

// present lists the sent objects the target holds, in the order to
// remove them: bindings first, vhosts last, and nothing inside a vhost
// that is itself removed (deleting the vhost removes its contents).
func (j *journal) present(got *Definitions) []sentObject {
	vhostGoes := map[string]bool{}
	have := map[Kind]map[string]Object{}
	for _, k := range Kinds {
		have[k] = index(k, got.Sections[k])
	}
	for _, v := range j.sent[KindVhost] {
		if _, ok := have[KindVhost][v.Name()]; ok {
			vhostGoes[v.Name()] = true
		}
	}
	var out []sentObject
	for i := len(Kinds) - 1; i >= 0; i-- {
		k := Kinds[i]
		for _, o := range j.sent[k] {
			id := ID(k, o)
			if _, ok := have[k][id]; !ok {
				continue
			}
			if k.vhostScoped() && vhostGoes[o.Vhost()] {
				continue
			}
			out = append(out, sentObject{kind: k, id: id, obj: o})
		}
	}
	return out
}

// remove deletes one object this run created.
func (j *journal) remove(ctx context.Context, target *broker.API, s sentObject) error {
	o := s.obj
	switch s.kind {
	case KindVhost:
		return target.DeleteVhost(ctx, o.Name())
	case KindUser:
		return target.DeleteUser(ctx, o.Name())
	case KindPermission:
		return target.DeletePermissions(ctx, o.Vhost(), o.Str("user"))
	case KindTopicPermission:
		// The API removes a user's topic permissions in a vhost all at
		// once: put back those that existed before.
		if err := target.DeleteTopicPermissions(ctx, o.Vhost(), o.Str("user")); err != nil {
			return err
		}
		for _, tp := range j.chk.got.Sections[KindTopicPermission] {
			if tp.Vhost() == o.Vhost() && tp.Str("user") == o.Str("user") {
				p := broker.TopicPermissions{Exchange: tp.Str("exchange"), Write: tp.Str("write"), Read: tp.Str("read")}
				if err := target.PutTopicPermissions(ctx, o.Vhost(), o.Str("user"), p); err != nil {
					return err
				}
			}
		}
		return nil
	case KindParameter:
		switch o.Str("component") {
		case "policy":
			return target.DeletePolicy(ctx, o.Vhost(), o.Name())
		case "operator_policy":
			return target.DeleteOperatorPolicy(ctx, o.Vhost(), o.Name())
		}
		return target.DeleteParameter(ctx, o.Str("component"), o.Vhost(), o.Name())
	case KindGlobalParameter:
		return target.DeleteGlobalParameter(ctx, o.Name())
	case KindPolicy:
		return target.DeletePolicy(ctx, o.Vhost(), o.Name())
	case KindExchange:
		return target.DeleteExchange(ctx, o.Vhost(), o.Name())
	case KindQueue:
		return target.DeleteQueue(ctx, o.Vhost(), o.Name())
	case KindBinding:
		list, err := target.ListBindings(ctx, o.Vhost())
		if err != nil {
			return err
		}
		for _, b := range list {
			if bindingID(b) == s.id {
				return target.DeleteBinding(ctx, b)
			}
		}
		return nil
	}
	return fmt.Errorf("warren cannot remove a %s", s.kind)
}

// bindingID is ID(KindBinding, ...) of a listed binding.
func bindingID(b broker.BindingInfo) string {
	o := Object{}
	o.Set("vhost", b.Vhost)
	o.Set("source", b.Source)
	o.Set("destination", b.Destination)
	o.Set("destination_type", b.DestinationType)
	o.Set("routing_key", b.RoutingKey)
	if len(b.Arguments) > 0 {
		o["arguments"] = json.RawMessage(b.Arguments)
	}
	return ID(KindBinding, o)
}

// failure words an import that stopped part-way: what the target refused
// (and which objects it did not create), what was rolled back, what state
// is left and what to do next. Its class is ClassUsage when the target
// refused the definitions (refused) and everything was rolled back
// (nothing changed), ClassOther otherwise.
func (rb *Rollback) failure(what string, cause error, refused bool) error {
	var b strings.Builder
	b.WriteString(what)
	b.WriteString(": ")
	b.WriteString(cause.Error())
	if len(rb.NotCreated) > 0 {
		fmt.Fprintf(&b, "; of the objects in that request, the target did not create %s", limitList(rb.NotCreated, 10))
	}
	switch {
	case len(rb.Left) > 0:
		fmt.Fprintf(&b, ".\nRolled back %d object(s) this run had created (%s), but could not remove %d: remove them by hand (or run the same command again once the cause is fixed: it creates only what is missing):\n  %s",
			len(rb.Removed), limitList(rb.Removed, 10), len(rb.Left), strings.Join(rb.Left, "\n  "))
		return errors.New(b.String())
	case len(rb.Removed) > 0:
		fmt.Fprintf(&b, ".\nRolled back the %d object(s) this run had created (%s): the target is as it was before. Fix the cause and run the same command again",
			len(rb.Removed), limitList(rb.Removed, 10))
	default:
		b.WriteString(".\nThis run had created nothing yet: the target is as it was before. Fix the cause and run the same command again")
	}
	var te *broker.TransportError
	if !refused || errors.As(cause, &te) {
		return errors.New(b.String())
	}
	return &Error{Class: ClassUsage, Err: errors.New(b.String())}
}
