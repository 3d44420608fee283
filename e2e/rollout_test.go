package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/components"
	"github.com/warrenmq/warren/lab/k8s"
	"github.com/warrenmq/warren/stack"
)

// restartedSince requires every pod of the cluster to have been created
// at or after start: the rollout replaced them all.
func restartedSince(t *testing.T, ctx context.Context, l *k8s.Lab, names components.Names, start time.Time) {
	t.Helper()
	var selector []string
	for k, v := range names.SelectorLabels() {
		selector = append(selector, k+"="+v)
	}
	sort.Strings(selector)
	out, err := l.Kubectl(ctx, nil, "-n", names.Namespace, "get", "pods", "-l", strings.Join(selector, ","), "-o", "json")
	require.NoError(t, err)
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string    `json:"name"`
				CreationTimestamp time.Time `json:"creationTimestamp"`
			} `json:"metadata"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal(out, &list))
	require.NotEmpty(t, list.Items)
	for _, p := range list.Items {
		// creationTimestamp has whole seconds.
		assert.False(t, p.Metadata.CreationTimestamp.Before(start.Truncate(time.Second)),
			"%s was created at %s, before the update began at %s: the rollout did not replace it", p.Metadata.Name, p.Metadata.CreationTimestamp, start)
	}
}

// checkRebalanced checks what `warren up` reported about spreading the
// quorum leaders, and reads the leaders back through a pod: no node may
// lead more than ⌈Q/3⌉+1 of the Q quorum queues. It returns a line for
// the report.
func checkRebalanced(t *testing.T, ctx context.Context, rb *stack.Rebalance, user, pass string, pods []pod, names components.Names) string {
	t.Helper()
	require.NotNil(t, rb, "warren up reports what it did to the quorum leaders")
	status := rb.Status
	if rb.Reason != "" {
		status += " (" + rb.Reason + ")"
	}
	line := fmt.Sprintf("warren up rebalance: %s through %s; %d quorum queues; leaders before: %s; after: %s",
		status, rb.API, rb.Queues, stack.FormatLeaders(rb.Before), stack.FormatLeaders(rb.After))
	t.Log(line)
	switch rb.Status {
	case stack.RebalanceDone:
	case stack.RebalanceSkipped:
		require.Contains(t, rb.Reason, "already spread", "after a rolling restart, only leaders already spread skip the rebalance")
	default:
		require.Failf(t, "warren up did not rebalance", "%s: %s (by hand: %s)", rb.Status, rb.Reason, rb.Manual)
	}
	assert.Contains(t, rb.API, "ClusterIP", "on the lab, warren up reaches the HTTP API through the client Service's ClusterIP")

	api, err := podAPI(user, pass, pods[0])
	require.NoError(t, err)
	qs, err := api.ListQueues(ctx, "", "name", "vhost", "type", "leader")
	require.NoError(t, err)
	leads := map[string]int{}
	q := 0
	for _, x := range qs {
		if x.Type == "quorum" {
			leads[x.Leader]++
			q++
		}
	}
	assert.Equal(t, rb.Queues, q, "warren up counted every quorum queue")
	require.GreaterOrEqual(t, q, 3, "enough quorum queues to spread")
	limit := (q+2)/3 + 1
	var nodes []string
	for i := range pods {
		n := names.NodeName(i)
		nodes = append(nodes, n)
		assert.LessOrEqual(t, leads[n], limit, "%s leads %d of %d quorum queues, more than ⌈Q/3⌉+1 = %d: %v", n, leads[n], q, limit, leads)
	}
	for n := range leads {
		assert.Contains(t, nodes, n, "a quorum queue is led by a node outside the cluster's 3")
	}
	return line
}
