package definitions

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/warrenmq/warren/broker"
)

// QueuePlacement says through which nodes Import declared the new queues,
// and how the leaders of the plan's quorum queues are spread afterwards.
//
// RabbitMQ places a queue on the node that handles its declaration: a
// quorum queue's leader, a classic queue's process (rabbitmq-server#2836).
// A definitions import through one node's API would make that node lead
// every queue. So Import declares each new queue through the API of the
// running node that leads the fewest queues of its type in the plan's
// vhosts (ties: the fewest in the whole cluster, then the node's name),
// which spreads them evenly and adds no argument to any queue: clients that
// redeclare them still match. When it knows no node's own API, it declares
// them through the target's API and asks the cluster to rebalance its
// leaders afterwards (POST /api/rebalance/queues).
type QueuePlacement struct {
	// Declared counts the new queues declared through each node's own API.
	Declared map[string]int `json:"declared,omitempty"`
	// Leaders counts, per running node, the quorum queues of the plan's
	// vhosts it leads after the import.
	Leaders map[string]int `json:"leaders,omitempty"`
	// Fallback says why some queues were not declared through their
	// node's API and what was done instead; empty when none.
	Fallback string `json:"fallback,omitempty"`
	// Rebalanced: Import asked the cluster to rebalance its queue leaders
	// (POST /api/rebalance/queues), because some node's API was unknown.
	Rebalanced bool `json:"rebalanced,omitempty"`
}

// String is the placement in one line, for logs and summaries.
func (p *QueuePlacement) String() string {
	if p == nil {
		return ""
	}
	var parts []string
	if len(p.Declared) > 0 {
		parts = append(parts, "declared through "+perNode(p.Declared))
	}
	if len(p.Leaders) > 0 {
		parts = append(parts, "quorum leaders "+perNode(p.Leaders))
	}
	if p.Fallback != "" {
		parts = append(parts, p.Fallback)
	}
	return strings.Join(parts, "; ")
}

func perNode(m map[string]int) string {
	nodes := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		parts[i] = fmt.Sprintf("%s %d", n, m[n])
	}
	return strings.Join(parts, ", ")
}

// rebalanceWait bounds how long Import waits for the cluster to move
// leaders after asking it to rebalance; it moves them one at a time.
const rebalanceWait = 2 * time.Minute

// postQueues declares new queues spread over the running nodes (see
// QueuePlacement), in batches, each node's batches in parallel with the
// others'. It returns how many it created, also on error.
func postQueues(ctx context.Context, target *broker.API, queues []Object) (*QueuePlacement, int, error) {
	p := &QueuePlacement{}
	cluster, err := target.Discover(ctx)
	if err != nil {
		p.Fallback = fmt.Sprintf("queues declared through %s, which leads them all: its nodes could not be listed (%v)", target.Endpoint().API, err)
		n, err := postBatches(ctx, target, queues)
		return p, n, err
	}
	running := cluster.Running()
	var nodes []string
	unknown := map[string][]string{} // why → nodes
	for _, n := range running {
		if cluster.API(n) != nil {
			nodes = append(nodes, n)
		} else {
			unknown[cluster.Unreached[n]] = append(unknown[cluster.Unreached[n]], n)
		}
	}
	vhosts := map[string]bool{}
	for _, q := range queues {
		vhosts[q.Vhost()] = true
	}
	if len(running) <= 1 {
		n, err := postBatches(ctx, target, queues)
		p.Leaders = leaders(ctx, target, vhosts, running)
		return p, n, err
	}

	created := 0
	if len(nodes) == 0 {
		if created, err = postBatches(ctx, target, queues); err != nil {
			return p, created, err
		}
	} else {
		share, err := assign(ctx, target, queues, nodes, vhosts)
		if err != nil {
			return p, 0, err
		}
		p.Declared = map[string]int{}
		created, err = postShares(ctx, cluster, share, p.Declared)
		if err != nil {
			return p, created, err
		}
	}
	if len(unknown) > 0 {
		var why []string
		for _, reason := range slices.Sorted(maps.Keys(unknown)) {
			why = append(why, fmt.Sprintf("%s: %s", strings.Join(unknown[reason], ", "), reason))
		}
		via := "the other nodes' APIs"
		if len(nodes) == 0 {
			via = target.Endpoint().API
		}
		p.Rebalanced = true
		p.Fallback = fmt.Sprintf("no API known for node %s; queues declared through %s, then leaders spread by POST /api/rebalance/queues (over the whole cluster)",
			strings.Join(why, "; "), via)
		slog.Warn("queue leaders: rebalancing after the import", "why", p.Fallback)
		if err := target.RebalanceQueues(ctx); err != nil {
			p.Fallback += fmt.Sprintf(" (which failed: %v; run it once the cluster is healthy)", err)
		} else if err := waitBalanced(ctx, target, len(running)); err != nil {
			p.Fallback += fmt.Sprintf(" (%v)", err)
		}
	}
	p.Leaders = leaders(ctx, target, vhosts, running)
	return p, created, nil
}

// queueGroup is what a queue is balanced with: quorum and stream queues by
// their leaders, classic queues by their node.
func queueGroup(queueType string) string {
	if queueType == "quorum" || queueType == "stream" {
		return "leader"
	}
	return "classic"
}

// assign shares the queues out over nodes: each goes to the node holding
// the fewest of its group in the plan's vhosts so far, ties broken by the
// fewest in the whole cluster, then by name. One read of every queue's
// node gives the counts.
func assign(ctx context.Context, target *broker.API, queues []Object, nodes []string, vhosts map[string]bool) (map[string][]Object, error) {
	existing, err := target.ListQueues(ctx, "", "name", "vhost", "type", "node", "leader")
	if err != nil {
		return nil, fmt.Errorf("read where the target's queues are, to spread the new ones: %w", err)
	}
	type key struct{ group, node string }
	inPlan, inCluster := map[key]int{}, map[key]int{}
	for _, q := range existing {
		node := q.Node
		if q.Leader != "" {
			node = q.Leader
		}
		k := key{queueGroup(q.Type), node}
		inCluster[k]++
		if vhosts[q.Vhost] {
			inPlan[k]++
		}
	}
	share := map[string][]Object{}
	for _, q := range queues {
		g := queueGroup(q.QueueType())
		best := nodes[0]
		for _, n := range nodes[1:] {
			a, b := key{g, n}, key{g, best}
			if inPlan[a] < inPlan[b] || (inPlan[a] == inPlan[b] && inCluster[a] < inCluster[b]) {
				best = n
			}
		}
		share[best] = append(share[best], q)
		inPlan[key{g, best}]++
		inCluster[key{g, best}]++
	}
	return share, nil
}

// postShares posts each node's share through that node's API, the nodes in
// parallel, and counts what each created. After a failure no node starts
// another batch.
func postShares(ctx context.Context, cluster *broker.Cluster, share map[string][]Object, declared map[string]int) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for node, objs := range share {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := postBatches(ctx, cluster.API(node), objs)
			mu.Lock()
			defer mu.Unlock()
			declared[node] += n
			if err != nil && ctx.Err() == nil {
				errs = append(errs, fmt.Errorf("through node %s: %w", node, err))
				cancel()
			}
		}()
	}
	wg.Wait()
	created := 0
	for _, n := range declared {
		created += n
	}
	if len(errs) > 0 {
		return created, errs[0]
	}
	return created, nil
}

// postBatches posts queues in batches of batchSize, one after the other.
func postBatches(ctx context.Context, api *broker.API, objs []Object) (int, error) {
	done := 0
	for done < len(objs) {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		n := min(len(objs)-done, batchSize)
		if err := post(ctx, api, KindQueue, objs[done:done+n]); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// waitBalanced waits until no running node leads more than its share of
// the cluster's quorum queues, ⌈queues/nodes⌉ (the aim of RabbitMQ's own
// rebalance), or until leaders stop moving, for up to rebalanceWait.
func waitBalanced(ctx context.Context, api *broker.API, nodes int) error {
	deadline := time.Now().Add(rebalanceWait)
	last, still := "", 0
	for {
		qs, err := api.ListQueues(ctx, "", "type", "leader")
		if err != nil {
			return err
		}
		count, total := map[string]int{}, 0
		for _, q := range qs {
			if q.Type == "quorum" && q.Leader != "" {
				count[q.Leader]++
				total++
			}
		}
		share := (total + nodes - 1) / nodes
		most := 0
		for _, n := range count {
			most = max(most, n)
		}
		if most <= share {
			return nil
		}
		// Leaders move one at a time; five readings without a change
		// mean the rebalance is over, as balanced as it gets.
		if now := perNode(count); now == last {
			if still++; still >= 5 {
				return fmt.Errorf("the rebalance left leaders at %s", now)
			}
		} else {
			last, still = now, 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leaders still at %s after %s; the rebalance goes on in the background", last, rebalanceWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// leaders counts the leaders of the quorum queues in vhosts per running
// node; nil when they cannot be read (the import stands all the same).
func leaders(ctx context.Context, api *broker.API, vhosts map[string]bool, running []string) map[string]int {
	out := map[string]int{}
	for _, n := range running {
		out[n] = 0
	}
	names := slices.Collect(maps.Keys(vhosts))
	sort.Strings(names)
	for _, v := range names {
		qs, err := api.ListQueues(ctx, v, "type", "leader")
		if err != nil {
			slog.Debug("cannot read queue leaders after the import", "vhost", v, "err", err)
			return nil
		}
		for _, q := range qs {
			if q.Type == "quorum" && q.Leader != "" {
				out[q.Leader]++
			}
		}
	}
	return out
}
