package verify

import (
	"fmt"
	"os/exec"
	"regexp"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab"
)

func TestLeaderBound(t *testing.T) {
	for _, c := range []struct{ queues, nodes, want int }{
		{1, 3, 2}, {2, 3, 2}, {3, 3, 2}, {4, 3, 3}, {6, 3, 3}, {7, 3, 4}, {14, 3, 6}, {3000, 3, 1001}, {5, 1, 6},
	} {
		assert.Equal(t, c.want, LeaderBound(c.queues, c.nodes), "%d queues over %d nodes", c.queues, c.nodes)
	}
}

func TestQuorumLeadersBoundary(t *testing.T) {
	nodes := []nodeInfo{{Name: "a", Running: true}, {Name: "b", Running: true}, {Name: "c", Running: true}, {Name: "d"}}
	spread := func(a, b, c int) []queueInfo {
		var qs []queueInfo
		for node, n := range map[string]int{"a": a, "b": b, "c": c} {
			for i := 0; i < n; i++ {
				qs = append(qs, queueInfo{Name: fmt.Sprintf("%s%d", node, i), Type: "quorum", Leader: node, Members: []string{"a", "b", "c"}})
			}
		}
		return qs
	}
	// 7 quorum queues over 3 running nodes (d is stopped): at most ⌈7/3⌉+1 = 4.
	ok := quorumLeaders(spread(4, 2, 1), nodes, []string{"v"})
	assert.Equal(t, Pass, ok.status, ok.detail)
	assert.Contains(t, ok.detail, "a 4 leaders / 7 members")
	assert.Contains(t, ok.detail, "at most ⌈7/3⌉+1 = 4 leaders per node")

	bad := quorumLeaders(spread(5, 1, 1), nodes, []string{"v"})
	assert.Equal(t, Fail, bad.status)
	assert.Contains(t, bad.detail, "a leads 5 of 7 quorum queues")
	assert.Contains(t, bad.detail, "--vhost-pattern '^(v)$'")
	assert.NotContains(t, bad.detail, "d 0 leaders", "a stopped node has no share")

	assert.Equal(t, Pass, quorumLeaders(nil, nodes, nil).status)
}

// Quorum queues declared through one node's connection are all led by it:
// the check fails and names the command that spreads them, and after that
// command it passes.
func TestUnbalancedQuorumLeadersFail(t *testing.T) {
	e := brokertest.New(t)
	requireLab(t, e) // rebalances with the lab's rabbitmq-queues
	ch := e.Channel(t, e.Target, 0)
	for i := 0; i < 6; i++ {
		_, err := ch.QueueDeclare(fmt.Sprintf("orders-%d", i), true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		require.NoError(t, err)
	}
	first := e.Lab.NodesOf(lab.Target)[0].Erlang
	o := options(t, e, AreaHealth)
	c := find(t, run(t, o), "quorum leaders")
	require.Equal(t, Fail, c.Status, c.Detail)
	assert.Contains(t, c.Detail, first+" leads 6 of 6 quorum queues, more than ⌈6/3⌉+1 = 3 leaders per node")
	m := regexp.MustCompile(`--vhost-pattern '([^']+)'`).FindStringSubmatch(c.Detail)
	require.NotNil(t, m, "the failure names the command that fixes it: %s", c.Detail)

	ctl := "/usr/lib/rabbitmq/bin/rabbitmq-queues"
	brokertest.Eventually(t, 2*time.Minute, func() error {
		cmd := exec.Command(ctl, "-n", first, "rebalance", "quorum", "--vhost-pattern", m[1])
		cmd.Env = append(cmd.Environ(), "HOME="+e.Lab.Dir, "RABBITMQ_USE_LONGNAME=false") // HOME holds the lab's Erlang cookie
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", cmd, err, out) // another rebalance may be in progress
		}
		if c := find(t, run(t, o), "quorum leaders"); c.Status != Pass {
			return fmt.Errorf("still %s: %s", c.Status, c.Detail)
		}
		return nil
	})
}
