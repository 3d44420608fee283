package shovel

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/warrenmq/warren/broker"
)

// Info is one of warren's shovels as a broker reports it: its parameter,
// its status, or both.
type Info struct {
	Name   string `json:"name"`
	Vhost  string `json:"vhost"`
	Node   string `json:"node,omitempty"`
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Side is the broker it was found on.
	Side Side `json:"side"`
	// Ghost: the broker reports the shovel, but no parameter declares it
	// any more (a stale status a node kept after a peer was killed).
	Ghost bool `json:"ghost,omitempty"`
}

// List returns warren's shovels on api's broker: every parameter, with the
// status the broker reports for it, and every status entry left without a
// parameter (a ghost).
//
// GET /api/parameters/shovel, GET /api/shovels
func List(ctx context.Context, api *broker.API, side Side) ([]Info, error) {
	params, err := api.ListParameters(ctx, broker.ShovelComponent)
	if err != nil {
		return nil, err
	}
	status, err := api.ListShovelStatus(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Info
	declared := map[string]bool{}
	for _, p := range params {
		if !IsWarren(p.Name) {
			continue
		}
		declared[stateKey(p.Vhost, p.Name)] = true
		info := Info{Name: p.Name, Vhost: p.Vhost, Side: side}
		if s, ok := findStatus(status, p.Vhost, p.Name); ok {
			info.Node, info.State, info.Reason = s.Node, s.State, s.Reason
		}
		out = append(out, info)
	}
	for _, s := range status {
		if IsWarren(s.Name) && !declared[stateKey(s.Vhost, s.Name)] {
			out = append(out, Info{Name: s.Name, Vhost: s.Vhost, Node: s.Node, State: s.State, Reason: s.Reason, Side: side, Ghost: true})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Vhost != out[j].Vhost {
			return out[i].Vhost < out[j].Vhost
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func findStatus(list []broker.ShovelStatus, vhost, name string) (broker.ShovelStatus, bool) {
	for _, s := range list {
		if s.Vhost == vhost && s.Name == name {
			return s, true
		}
	}
	return broker.ShovelStatus{}, false
}

// fleet declares, watches and removes shovels on the broker that runs them.
type fleet struct {
	side Side
	// api is the broker's API for cluster-wide calls; it fails over
	// between nodes when their APIs are known.
	api *broker.API
	// cluster maps nodes to their own APIs, to declare a shovel on the
	// node that should run it and to clear what a node keeps.
	cluster *broker.Cluster
	// start bounds how long a declared shovel may take to be running.
	start time.Duration

	// declaring is held while a shovel parameter is set or cleared.
	mu        sync.Mutex
	declaring chan struct{}
}

// Shovel parameters are set and cleared one at a time across the cluster.
// Each is a runtime parameter change, which RabbitMQ 3.10 writes in a
// cluster-wide Mnesia transaction and follows by starting or stopping the
// shovel under a cluster-wide (mirrored) supervisor before it answers.
// Concurrent changes contend there: on the lab, with three declarations
// at once per node, most PUTs took 0.1-1.5 s and some 6 to 17 s (a queue
// whose shovel waits so long holds its --parallel slot idle), while one at
// a time none took more than 2 s and twelve queues drained 20-30 % sooner.
// One at a time also floods no node's API. The slot covers the call only,
// not the wait for the shovel to run, which the next declaration need not
// wait for.

// acquire takes the declaration slot; release gives it back.
func (f *fleet) acquire(ctx context.Context) (release func(), err error) {
	f.mu.Lock()
	if f.declaring == nil {
		f.declaring = make(chan struct{}, 1)
	}
	slot := f.declaring
	f.mu.Unlock()
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// putShovel declares a shovel through via, in its turn (see acquire).
func (f *fleet) putShovel(ctx context.Context, via *broker.API, vhost, name string, value map[string]any) error {
	release, err := f.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	return via.PutShovel(ctx, vhost, name, value)
}

// deleteShovel removes a shovel's parameter through via, in its turn.
func (f *fleet) deleteShovel(ctx context.Context, via *broker.API, vhost, name string) error {
	release, err := f.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	return via.DeleteShovel(ctx, vhost, name)
}

// nodeAPI returns the API that makes a shovel run on node, or the
// cluster-wide API and why it had to do.
func (f *fleet) nodeAPI(node string) (*broker.API, string) {
	if f.side == OnSource {
		return f.api, "" // a single node
	}
	if api := f.cluster.API(node); api != nil {
		return api, ""
	}
	why := "the node's API is unknown"
	if f.cluster != nil {
		if r := f.cluster.Unreached[node]; r != "" {
			why = r
		}
	}
	return f.api, why
}

// status returns the shovel's status, if a node reports one.
func (f *fleet) status(ctx context.Context, vhost, name string) (broker.ShovelStatus, bool, error) {
	list, err := f.api.ListShovelStatus(ctx, vhost)
	if err != nil {
		return broker.ShovelStatus{}, false, err
	}
	s, ok := findStatus(list, vhost, name)
	return s, ok, nil
}

// ensureRunning makes sure the queue's shovel runs and returns its
// status. A shovel the broker reports running is left alone: declaring it
// again would restart it, and a restart costs duplicates. Otherwise it is
// declared through via (the node that should run it), and counts as
// started only once the broker reports it running. A parameter that is
// stored but runs no shovel after the start timeout (a declaration whose
// answer was lost, a node that died while starting it) is removed and
// declared again, once; if that fails too, the error names the shovel,
// the node and the broker's reason.
func (f *fleet) ensureRunning(ctx context.Context, via *broker.API, s Spec) (broker.ShovelStatus, error) {
	name := Name(s.Queue)
	st, ok, err := f.status(ctx, s.Vhost, name)
	if err != nil {
		return st, err
	}
	if ok && st.State == "running" {
		if _, err := f.api.GetParameter(ctx, broker.ShovelComponent, s.Vhost, name); err == nil {
			return st, nil
		}
		// A running ghost: its parameter is gone. Clear it, then declare.
		if err := f.remove(ctx, s.Vhost, name); err != nil {
			return st, err
		}
	}
	for attempt := 1; ; attempt++ {
		if err := f.putShovel(ctx, via, s.Vhost, name, s.Value()); err != nil {
			return st, err
		}
		st, err = f.waitRunning(ctx, via, s.Vhost, name)
		if err == nil || ctx.Err() != nil || attempt == 2 {
			return st, err
		}
		slog.Warn("shovel declared but not running; declaring it again", "vhost", s.Vhost, "shovel", name, "node", st.Node, "state", st.State, "reason", st.Reason)
		// PUT of an unchanged parameter is a no-op in RabbitMQ, so the
		// stale one must go first.
		if err := f.remove(ctx, s.Vhost, name); err != nil {
			return st, err
		}
	}
}

// waitRunning waits until the broker reports the shovel running.
func (f *fleet) waitRunning(ctx context.Context, via *broker.API, vhost, name string) (broker.ShovelStatus, error) {
	deadline := time.Now().Add(f.start)
	var last broker.ShovelStatus
	var seen bool
	for {
		st, ok, err := f.status(ctx, vhost, name)
		if err == nil && ok {
			last, seen = st, true
			if st.State == "running" {
				return st, nil
			}
		}
		if time.Now().After(deadline) {
			switch {
			case !seen:
				return last, fmt.Errorf("shovel %s in vhost %s was declared through %s but no node reports it after %s", name, vhost, via.Base(), f.start)
			case last.Reason != "":
				return last, fmt.Errorf("shovel %s in vhost %s on node %s is %s: %s", name, vhost, last.Node, last.State, last.Reason)
			}
			return last, fmt.Errorf("shovel %s in vhost %s on node %s is still %s after %s", name, vhost, last.Node, last.State, f.start)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return last, err
		}
	}
}

// remove deletes a shovel and waits until no node reports it, so that its
// unacknowledged messages are back on the source before anyone counts.
// RabbitMQ 3.10 keeps a shovel's status on the node it ran on and clears
// it only when the deletion is handled by that node, so the deletion goes
// through the API of the node that reports the shovel. A status that stays
// all the same (a ghost) is cleared the one way 3.10 offers: declare a
// shovel of that name that can never connect, through that node, and
// delete it there again.
func (f *fleet) remove(ctx context.Context, vhost, name string) error {
	st, ok, err := f.status(ctx, vhost, name)
	if err != nil {
		return err
	}
	via := f.api
	if ok {
		if api, why := f.nodeAPI(st.Node); why == "" {
			via = api
		}
	}
	if err := f.deleteShovel(ctx, via, vhost, name); err != nil {
		return err
	}
	if err := f.waitGone(ctx, vhost, name, 15*time.Second); err == nil || ctx.Err() != nil {
		return err
	}
	// Still reported: a ghost on some node.
	list, err := f.api.ListShovelStatus(ctx, vhost)
	if err != nil {
		return err
	}
	for _, s := range list {
		if s.Name != name {
			continue
		}
		if err := f.clearGhost(ctx, s); err != nil {
			return err
		}
	}
	return f.waitGone(ctx, vhost, name, 15*time.Second)
}

// ghostSpec is a shovel that can never connect (port 1 is closed), used to
// make a node forget a stale status entry.
var ghostSpec = map[string]any{
	"src-protocol": "amqp091", "src-uri": "amqp://127.0.0.1:1", "src-queue": "warren.ghost",
	"dest-protocol": "amqp091", "dest-uri": "amqp://127.0.0.1:1", "dest-exchange": "",
	"ack-mode": "on-confirm", "reconnect-delay": 60,
}

// clearGhost makes the node that reports s forget it.
func (f *fleet) clearGhost(ctx context.Context, s broker.ShovelStatus) error {
	api, why := f.nodeAPI(s.Node)
	if why != "" {
		return fmt.Errorf("node %s still reports shovel %s in vhost %s (%s) though it was deleted, and warren cannot reach that node's API: %s. "+
			"Give every node's API (--node-api URL,... or --node-api-template) and run `warren drain --abort` again, or restart node %s",
			s.Node, s.Name, s.Vhost, s.State, why, s.Node)
	}
	slog.Warn("clearing a stale shovel status", "node", s.Node, "vhost", s.Vhost, "shovel", s.Name, "state", s.State)
	if err := f.putShovel(ctx, api, s.Vhost, s.Name, ghostSpec); err != nil {
		return fmt.Errorf("clear stale shovel %s on node %s: %w", s.Name, s.Node, err)
	}
	if err := f.deleteShovel(ctx, api, s.Vhost, s.Name); err != nil {
		return fmt.Errorf("clear stale shovel %s on node %s: %w", s.Name, s.Node, err)
	}
	return nil
}

// waitGone waits up to d until no node reports the shovel.
func (f *fleet) waitGone(ctx context.Context, vhost, name string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		st, ok, err := f.status(ctx, vhost, name)
		if err == nil && !ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("shovel %s in vhost %s: cannot tell whether it stopped: %w", name, vhost, err)
			}
			return fmt.Errorf("shovel %s in vhost %s is still reported %s on node %s after its deletion", name, vhost, st.State, st.Node)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// describe says what the broker reports of a queue's shovel, for errors.
func (f *fleet) describe(ctx context.Context, vhost, name string) string {
	st, ok, err := f.status(ctx, vhost, name)
	switch {
	case err != nil:
		return "shovel " + name + ": state unknown: " + err.Error()
	case !ok:
		return "shovel " + name + ": not reported by any node"
	}
	parts := []string{"shovel " + name, st.State, "on node " + st.Node}
	if st.Reason != "" {
		parts = append(parts, "("+st.Reason+")")
	}
	return strings.Join(parts, " ")
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
