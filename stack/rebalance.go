package stack

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/components"
)

// Rebalance statuses.
const (
	// RebalanceDone: the leaders were spread (Before and After say how).
	RebalanceDone = "done"
	// RebalanceSkipped: nothing to do (no pod changed, one node, no
	// quorum queue, leaders already spread) or turned off.
	RebalanceSkipped = "skipped"
	// RebalanceNotDone: it should have happened and did not (the HTTP API
	// unreachable, the cluster not back in time); Manual says how to do it
	// by hand. `warren up` still succeeds: the cluster serves, only less
	// evenly.
	RebalanceNotDone = "not-done"
)

// Rebalance is what `warren up` did, after an update that restarted,
// added or removed pods, to spread the quorum queues' leaders over the
// nodes again, as the RabbitMQ Cluster Operator does after a rolling
// restart. A rolling update leaves them lopsided: each stopping pod hands
// its leaders to the others, so the pod restarted last leads none.
type Rebalance struct {
	Status string `json:"status"`
	// Reason says why it was skipped or not done.
	Reason string `json:"reason,omitempty"`
	// API is the HTTP API it used (no credentials) and how it reached it.
	API string `json:"api,omitempty"`
	// Queues counts the cluster's quorum queues, in every vhost.
	Queues int `json:"queues,omitempty"`
	// Before and After count quorum queue leaders per running node, before
	// POST /api/rebalance/queues and once the leaders stopped moving.
	Before map[string]int `json:"leadersBefore,omitempty"`
	After  map[string]int `json:"leadersAfter,omitempty"`
	// Manual is the command that rebalances by hand, when it was not done.
	Manual string `json:"manual,omitempty"`
}

// UpOptions vary what Up does after Pulumi's update.
type UpOptions struct {
	// Rebalance spreads quorum queue leaders again after an update that
	// changed the pods (see Rebalance).
	Rebalance bool
	// ClusterAPI is the cluster's HTTP API as this machine reaches it
	// (a port-forward, an Ingress); empty: warren finds a way (apiFinder).
	ClusterAPI string
	// RebalanceTimeout bounds the wait for every node to run and every
	// quorum queue to have its members online, and then for the leaders
	// to spread; 0 means 5 minutes.
	RebalanceTimeout time.Duration
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultRebalanceTimeout is UpOptions.RebalanceTimeout's default.
const DefaultRebalanceTimeout = 5 * time.Minute

// rebalancer spreads the leaders of a deployed cluster.
type rebalancer struct {
	cfg     *components.Config
	opts    UpOptions
	finder  apiFinder
	log     *slog.Logger
	poll    time.Duration
	settled time.Duration // leaders unchanged this long count as done moving
}

// manual is the command that rebalances by hand: it needs only kubectl
// exec, not the HTTP API.
func manualRebalance(cfg *components.Config) string {
	n := cfg.Names()
	return fmt.Sprintf("kubectl -n %s exec %s -c rabbitmq -- rabbitmq-queues rebalance quorum", n.Namespace, n.Pod(0))
}

// run rebalances after an update whose effect on the pods is r.
func (rb *rebalancer) run(ctx context.Context, r rollout) *Rebalance {
	skip := func(why string) *Rebalance { return &Rebalance{Status: RebalanceSkipped, Reason: why} }
	switch {
	case !rb.opts.Rebalance:
		return skip("turned off (--rebalance=false)")
	case !r.PodsChanged:
		if r.StatefulSetOp == "create" {
			return skip("the cluster was created: its queues, declared from now on, are placed by queue_leader_locator = balanced")
		}
		return skip("no pod was restarted, added or removed")
	case rb.cfg.Replicas < 2:
		return skip("one node: nothing to spread")
	}
	res := &Rebalance{Status: RebalanceNotDone, Manual: manualRebalance(rb.cfg)}
	notDone := func(format string, args ...any) *Rebalance {
		res.Reason = fmt.Sprintf(format, args...)
		rb.log.Warn("quorum leaders not rebalanced", "reason", res.Reason, "by hand", res.Manual)
		return res
	}
	route, err := rb.finder.find(ctx)
	if err != nil {
		return notDone("the cluster's HTTP API is not reachable from this machine (%v); pass --cluster-api URL (say, after `kubectl -n %s port-forward service/%s 15672`) or rebalance by hand",
			err, rb.cfg.Namespace, rb.cfg.Names().ClientService())
	}
	defer route.stop()
	res.API = fmt.Sprintf("%s (%s)", redactedURL(route.URL), route.Via)
	ep := broker.Endpoint{Name: "cluster", API: route.URL, APIUser: rb.cfg.AdminUsername, APIPassword: rb.cfg.Secrets.AdminPassword, TLS: route.TLS}
	api, err := ep.NewAPI()
	if err != nil {
		return notDone("%v", err)
	}
	rb.log.Info("rebalancing quorum leaders after the rollout: waiting for every node and quorum member", "api", res.API)

	ctx, cancel := context.WithTimeout(ctx, rb.opts.RebalanceTimeout)
	defer cancel()
	want := make([]string, rb.cfg.Replicas)
	for i := range want {
		want[i] = rb.cfg.Names().NodeName(i)
	}
	// The first read says whether the route and the login work at all:
	// that does not get better by waiting.
	st, err := readClusterState(ctx, api)
	if err != nil {
		return notDone("the HTTP API at %s did not serve the rebalance: %v", res.API, err)
	}
	for {
		err = st.ready(want)
		if err == nil {
			break
		}
		if !sleep(ctx, rb.poll) {
			return notDone("the cluster was not ready to rebalance within %s: %v", rb.opts.RebalanceTimeout, err)
		}
		st, err = readClusterState(ctx, api)
		if err != nil && ctx.Err() != nil {
			return notDone("the cluster was not ready to rebalance within %s: %v", rb.opts.RebalanceTimeout, err)
		}
		if err != nil {
			st = &clusterState{readErr: err}
		}
	}
	res.Queues, res.Before = st.quorum, st.leaders
	if st.quorum == 0 {
		res.Status, res.Reason, res.Manual = RebalanceSkipped, "no quorum queue", ""
		return res
	}
	if spread(st.leaders, st.quorum) {
		res.Status, res.Reason, res.Manual, res.After = RebalanceSkipped, "the leaders are already spread", "", st.leaders
		return res
	}
	if err := api.RebalanceQueues(ctx); err != nil {
		return notDone("%v", err)
	}
	// The broker moves leaders in the background, one at a time: wait
	// until they are spread, or have not moved for a while.
	last, since := st.leaders, time.Now()
	for !spread(last, st.quorum) && time.Since(since) < rb.settled {
		if !sleep(ctx, rb.poll) {
			break
		}
		now, err := readClusterState(ctx, api)
		if err != nil {
			continue
		}
		if !maps.Equal(now.leaders, last) {
			last, since = now.leaders, time.Now()
		}
	}
	res.After = last
	res.Status, res.Manual = RebalanceDone, ""
	if !spread(last, st.quorum) {
		res.Reason = fmt.Sprintf("the broker stopped moving leaders before every node led at most %d of %d; a queue's leader can move only to a node that holds one of its members",
			ceilDiv(st.quorum, len(last)), st.quorum)
	}
	rb.log.Info("quorum leaders rebalanced", "queues", st.quorum, "before", FormatLeaders(res.Before), "after", FormatLeaders(res.After))
	return res
}

// clusterState is what the rebalance reads from the HTTP API.
type clusterState struct {
	running []string
	// quorum counts quorum queues; leaders counts their leaders per
	// running node (0 for a node that leads none).
	quorum  int
	leaders map[string]int
	// notReady names, for the wait's message, up to a few quorum queues
	// without a leader or with members offline.
	notReady []string
	// readErr is why the state could not be read (a node answering 503
	// while it boots, say).
	readErr error
}

// readClusterState lists the nodes and the quorum queues of every vhost.
//
// GET /api/nodes, GET /api/queues?columns=...
func readClusterState(ctx context.Context, api *broker.API) (*clusterState, error) {
	nodes, err := api.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	st := &clusterState{leaders: map[string]int{}}
	for _, n := range nodes {
		if n.Running {
			st.running = append(st.running, n.Name)
			st.leaders[n.Name] = 0
		}
	}
	sort.Strings(st.running)
	qs, err := api.ListQueues(ctx, "", "name", "vhost", "type", "leader", "members", "online")
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		if q.Type != "quorum" {
			continue
		}
		st.quorum++
		if q.Leader != "" {
			st.leaders[q.Leader]++
		}
		offline := 0
		for _, m := range q.Members {
			if !slices.Contains(q.Online, m) {
				offline++
			}
		}
		if (q.Leader == "" || offline > 0) && len(st.notReady) < 3 {
			st.notReady = append(st.notReady, fmt.Sprintf("%s/%s (leader %q, %d of %d members offline)", q.Vhost, q.Name, q.Leader, offline, len(q.Members)))
		}
	}
	return st, nil
}

// ready reports why the cluster is not ready to rebalance: a node of want
// not running, or a quorum queue without a leader or with a member offline.
func (st *clusterState) ready(want []string) error {
	if st.readErr != nil {
		return st.readErr
	}
	var missing []string
	for _, n := range want {
		if !slices.Contains(st.running, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("nodes not running: %s", strings.Join(missing, ", "))
	}
	if len(st.notReady) > 0 {
		return fmt.Errorf("quorum queues not whole yet: %s", strings.Join(st.notReady, "; "))
	}
	return nil
}

// spread reports whether no node leads more than ⌈queues/nodes⌉: the
// target of RabbitMQ's rebalance.
func spread(leaders map[string]int, queues int) bool {
	if len(leaders) == 0 {
		return true
	}
	limit := ceilDiv(queues, len(leaders))
	for _, n := range leaders {
		if n > limit {
			return false
		}
	}
	return true
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// FormatLeaders renders leaders per node as "node=n, node=n", short node
// names (the part before the first dot), in name order.
func FormatLeaders(leaders map[string]int) string {
	nodes := slices.Sorted(maps.Keys(leaders))
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		parts = append(parts, fmt.Sprintf("%s=%d", ShortNode(n), leaders[n]))
	}
	return strings.Join(parts, ", ")
}

// ShortNode is a node name without its domain: rabbit@rabbitmq-server-0.
func ShortNode(node string) string {
	name, _, _ := strings.Cut(node, ".")
	return name
}

// sleep waits d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
