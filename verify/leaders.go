package verify

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// LeaderBound is the most quorum queue leaders one running node may hold,
// of queues quorum queues over nodes running nodes, before verify calls the
// cluster unbalanced: its even share ⌈queues/nodes⌉, plus one.
//
// The share is what an even spread gives (warren's import declares each
// queue through the node with the fewest, and RabbitMQ's own rebalance
// aims at the same). The one extra leader tolerates a single election
// since (a leader restarted, a member that timed out under load) without
// failing a healthy cluster; anything beyond means the queues were placed
// on one node (declared through one connection or API) or a node came
// back after a restart without its leaders, and that node carries more
// than its share of the load.
func LeaderBound(queues, nodes int) int {
	if nodes <= 0 {
		return queues
	}
	return (queues+nodes-1)/nodes + 1
}

// quorumLeaders reports the leaders and members of the quorum queues per
// running node, and fails when a node leads more than LeaderBound.
func quorumLeaders(queues []queueInfo, nodes []nodeInfo, vhosts []string) outcome {
	var running []string
	for _, n := range nodes {
		if n.Running {
			running = append(running, n.Name)
		}
	}
	sort.Strings(running)
	if len(queues) == 0 {
		return passf("no quorum queues to check")
	}
	if len(running) == 0 {
		return failf("no running node")
	}
	leaders, members := map[string]int{}, map[string]int{}
	for _, q := range queues {
		if q.Leader != "" {
			leaders[q.Leader]++
		}
		for _, m := range q.Members {
			members[m]++
		}
	}
	bound := LeaderBound(len(queues), len(running))
	var per, over []string
	for _, n := range running {
		per = append(per, fmt.Sprintf("%s %d leaders / %d members", n, leaders[n], members[n]))
		if leaders[n] > bound {
			over = append(over, fmt.Sprintf("%s leads %d", n, leaders[n]))
		}
	}
	rule := fmt.Sprintf("⌈%d/%d⌉+1 = %d leaders per node", len(queues), len(running), bound)
	detail := fmt.Sprintf("%d quorum queues over %d running nodes: %s", len(queues), len(running), strings.Join(per, ", "))
	if len(over) == 0 {
		return passf("%s; at most %s", detail, rule)
	}
	return failf("unbalanced: %s of %d quorum queues, more than %s (%s). Nothing is lost, but that node carries most of the load and its failure moves most leaders at once. "+
		"Spread them with `rabbitmq-queues rebalance quorum --vhost-pattern '%s'` on any node (or POST /api/rebalance/queues for the whole cluster); "+
		"warren's import spreads them itself when it knows every node's API (--node-api or --node-api-template)",
		strings.Join(over, ", "), len(queues), rule, detail, vhostPattern(vhosts))
}

// vhostPattern is a regular expression matching exactly the vhosts, or
// every vhost when none is named.
func vhostPattern(vhosts []string) string {
	if len(vhosts) == 0 {
		return ".*"
	}
	quoted := make([]string, len(vhosts))
	for i, v := range vhosts {
		quoted[i] = regexp.QuoteMeta(v)
	}
	return "^(" + strings.Join(quoted, "|") + ")$"
}
