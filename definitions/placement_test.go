package definitions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/brokertest"
)

// queuesPlan plans quorum and classic queues in vhost, types kept.
func queuesPlan(t *testing.T, vhost string, quorum, classic int) *definitions.Plan {
	t.Helper()
	var qs []map[string]any
	for i := 0; i < quorum; i++ {
		qs = append(qs, map[string]any{"name": fmt.Sprintf("qq-%02d", i), "vhost": vhost, "durable": true, "auto_delete": false,
			"arguments": map[string]any{"x-queue-type": "quorum", "x-delivery-limit": 5}})
	}
	for i := 0; i < classic; i++ {
		qs = append(qs, map[string]any{"name": fmt.Sprintf("cq-%02d", i), "vhost": vhost, "durable": true, "auto_delete": false,
			"arguments": map[string]any{}})
	}
	doc, err := json.Marshal(map[string]any{"rabbit_version": "3.10.8", "vhosts": []any{map[string]any{"name": vhost}}, "queues": qs})
	require.NoError(t, err)
	d, err := definitions.Load(bytes.NewReader(doc), "")
	require.NoError(t, err)
	p, err := definitions.NewPlan(d, definitions.Options{QueueType: definitions.QueueTypeKeep})
	require.NoError(t, err)
	return p
}

// where reads each queue's node (a quorum queue's leader) and arguments.
func where(t *testing.T, api *broker.API, vhost string) (map[string]string, map[string]map[string]any) {
	t.Helper()
	qs, err := api.ListQueues(context.Background(), vhost, "name", "type", "node", "leader", "arguments")
	require.NoError(t, err)
	nodes, args := map[string]string{}, map[string]map[string]any{}
	for _, q := range qs {
		nodes[q.Name] = q.Node
		if q.Type == "quorum" {
			nodes[q.Name] = q.Leader
		}
		args[q.Name] = q.Arguments
	}
	return nodes, args
}

func TestImportSpreadsQueuesOverTheNodesThroughTheirAPIs(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	require.NotEmpty(t, e.Target.NodeAPIs, "the lab gives each target node's API (WARREN_NODE_API)")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	running := runningNodes(t, e.TargetAPI)
	require.Len(t, running, 3, "the lab's cluster runs 3 nodes")

	p := queuesPlan(t, e.Vhost, 7, 3)
	res, err := definitions.Import(ctx, e.TargetAPI, p)
	require.NoError(t, err)
	require.NotNil(t, res.Placement)
	assert.Empty(t, res.Placement.Fallback)
	assert.False(t, res.Placement.Rebalanced)

	nodes, args := where(t, e.TargetAPI, e.Vhost)
	leaders, classic := map[string]int{}, map[string]int{}
	for name, node := range nodes {
		if name[:2] == "qq" {
			leaders[node]++
		} else {
			classic[node]++
		}
	}
	// 7 quorum queues over 3 nodes: 3, 2, 2; 3 classic queues: 1 each.
	for _, n := range running {
		assert.Contains(t, []int{2, 3}, leaders[n], "quorum leaders on %s: %v", n, leaders)
		assert.Equal(t, 1, classic[n], "classic queues on %s: %v", n, classic)
	}
	assert.Equal(t, leaders, res.Placement.Leaders, "the result reports the leaders the target has")
	total := 0
	for _, n := range res.Placement.Declared {
		total += n
	}
	assert.Equal(t, 10, total, "every new queue declared through a node's API: %v", res.Placement.Declared)

	// No argument added: what the plan wanted and nothing else.
	assert.Equal(t, map[string]any{"x-queue-type": "quorum", "x-delivery-limit": float64(5)}, args["qq-00"])
	assert.Empty(t, args["cq-00"])

	// Queues added later join the lightest nodes: one more quorum queue
	// goes to a node that leads 2.
	more := queuesPlan(t, e.Vhost, 8, 3)
	res, err = definitions.Import(ctx, e.TargetAPI, more)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Total())
	nodes, _ = where(t, e.TargetAPI, e.Vhost)
	prev := leaders
	leaders = map[string]int{}
	for name, node := range nodes {
		if name[:2] == "qq" {
			leaders[node]++
		}
	}
	assert.Equal(t, 2, prev[nodes["qq-07"]], "qq-07 went to a node that led 2 (%v)", prev)
	for _, n := range running {
		assert.Contains(t, []int{2, 3}, leaders[n], "8 quorum leaders over 3 nodes: %v", leaders)
	}
}

// Without node APIs the import declares through the target's API, which
// leads everything, then asks the cluster to rebalance. The rebalance
// moves leaders of every vhost, so it runs alone on the lab.
func TestImportWithoutNodeAPIsRebalancesAfterwards(t *testing.T) {
	e := brokertest.NewDisruptive(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ep := e.Target
	ep.NodeAPIs, ep.NodeAPITemplate = nil, ""
	api, err := ep.NewAPI()
	require.NoError(t, err)

	res, err := definitions.Import(ctx, api, queuesPlan(t, e.Vhost, 6, 0))
	require.NoError(t, err)
	require.NotNil(t, res.Placement)
	assert.True(t, res.Placement.Rebalanced)
	assert.Contains(t, res.Placement.Fallback, "POST /api/rebalance/queues")
	assert.Empty(t, res.Placement.Declared)

	// RabbitMQ's rebalance evens out the whole cluster: no running node
	// leads more than ⌈quorum queues / nodes⌉ of them.
	running := runningNodes(t, e.TargetAPI)
	brokertest.Eventually(t, time.Minute, func() error {
		qs, err := e.TargetAPI.ListQueues(ctx, "", "type", "leader")
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
		share := (total + len(running) - 1) / len(running)
		for n, c := range count {
			if c > share {
				return fmt.Errorf("%s leads %d of %d quorum queues, more than its share %d: %v", n, c, total, share, count)
			}
		}
		return nil
	})
}

func runningNodes(t *testing.T, api *broker.API) []string {
	t.Helper()
	nodes, err := api.ListNodes(context.Background())
	require.NoError(t, err)
	var out []string
	for _, n := range nodes {
		if n.Running {
			out = append(out, n.Name)
		}
	}
	return out
}
