package stack

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/components"
)

func step(op apitype.OpType, typ string, diffs []string, detailed map[string]apitype.PropertyDiff, outputs map[string]any) apitype.EngineEvent {
	m := apitype.StepEventMetadata{Op: op, Type: typ, Diffs: diffs, DetailedDiff: detailed}
	if outputs != nil {
		m.New = &apitype.StepEventStateMetadata{Type: typ, Outputs: outputs}
	}
	return apitype.EngineEvent{ResOutputsEvent: &apitype.ResOutputsEvent{Metadata: m}}
}

func service(name, ip string) map[string]any {
	return map[string]any{"metadata": map[string]any{"name": name}, "spec": map[string]any{"clusterIP": ip}}
}

// The engine's events say whether the update touched the pods and where
// the client Service is.
func TestRolloutFromEngineEvents(t *testing.T) {
	for name, tc := range map[string]struct {
		events []apitype.EngineEvent
		want   rollout
	}{
		"a changed setting rolls the pods": {
			events: []apitype.EngineEvent{
				step(apitype.OpReplace, "kubernetes:core/v1:ConfigMap", []string{"data"}, nil, nil),
				step(apitype.OpUpdate, typeStatefulSet, []string{"metadata", "spec"}, nil, nil),
				step(apitype.OpSame, typeService, nil, nil, service("rabbitmq-nodes", "None")),
				step(apitype.OpSame, typeService, nil, nil, service("rabbitmq", "10.96.0.7")),
			},
			want: rollout{StatefulSetOp: "update", PodsChanged: true, ClusterIP: "10.96.0.7"},
		},
		"a detailed diff under spec": {
			events: []apitype.EngineEvent{step(apitype.OpUpdate, typeStatefulSet, nil, map[string]apitype.PropertyDiff{"spec.replicas": {Kind: apitype.DiffUpdate}}, nil)},
			want:   rollout{StatefulSetOp: "update", PodsChanged: true},
		},
		"a label on the StatefulSet restarts nothing": {
			events: []apitype.EngineEvent{step(apitype.OpUpdate, typeStatefulSet, []string{"metadata"}, nil, nil)},
			want:   rollout{StatefulSetOp: "update"},
		},
		"a replaced StatefulSet has new pods": {
			events: []apitype.EngineEvent{
				step(apitype.OpReplace, typeStatefulSet, nil, nil, nil),
				step(apitype.OpDeleteReplaced, typeStatefulSet, nil, nil, nil),
			},
			want: rollout{StatefulSetOp: "delete-replaced", PodsChanged: true},
		},
		"a new cluster": {
			events: []apitype.EngineEvent{step(apitype.OpCreate, typeStatefulSet, nil, nil, nil)},
			want:   rollout{StatefulSetOp: "create"},
		},
		"nothing changed": {
			events: []apitype.EngineEvent{step(apitype.OpSame, typeStatefulSet, nil, nil, nil)},
			want:   rollout{StatefulSetOp: "same"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			ch := make(chan events.EngineEvent)
			got := recordRollout(ch, "rabbitmq")
			for _, e := range tc.events {
				ch <- events.EngineEvent{EngineEvent: e}
			}
			close(ch)
			assert.Equal(t, tc.want, <-got)
		})
	}
}

func TestSpread(t *testing.T) {
	assert.True(t, spread(map[string]int{"a": 4, "b": 4, "c": 4}, 12))
	assert.True(t, spread(map[string]int{"a": 5, "b": 4, "c": 4}, 13), "⌈13/3⌉ = 5")
	assert.False(t, spread(map[string]int{"a": 6, "b": 4, "c": 3}, 13))
	assert.False(t, spread(map[string]int{"a": 12, "b": 0, "c": 0}, 12), "a node that leads none is not spread")
	assert.True(t, spread(map[string]int{}, 0))
}

func TestReadyNamesWhatIsMissing(t *testing.T) {
	st := &clusterState{running: []string{"rabbit@a", "rabbit@b"}}
	err := st.ready([]string{"rabbit@a", "rabbit@b", "rabbit@c"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nodes not running: rabbit@c")

	st.running = append(st.running, "rabbit@c")
	st.notReady = []string{`/orders (leader "", 1 of 3 members offline)`}
	err = st.ready([]string{"rabbit@a", "rabbit@b", "rabbit@c"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/orders")

	st.notReady = nil
	assert.NoError(t, st.ready([]string{"rabbit@a", "rabbit@b", "rabbit@c"}))
}

func TestFormatLeaders(t *testing.T) {
	assert.Equal(t, "rabbit@rabbitmq-server-0=4, rabbit@rabbitmq-server-1=0",
		FormatLeaders(map[string]int{"rabbit@rabbitmq-server-1.rabbitmq-nodes.mq": 0, "rabbit@rabbitmq-server-0.rabbitmq-nodes.mq": 4}))
}

// The rebalance is skipped, without touching any cluster, when the update
// left the pods alone, created them, or when there is one node.
func TestRebalanceSkips(t *testing.T) {
	cfg := func(replicas int) *components.Config {
		c, err := components.ParseConfig(components.MapLookup(map[string]string{"warren:replicas": strconv.Itoa(replicas), "warren:allowEvenReplicas": "true"}, nil))
		require.NoError(t, err)
		return c
	}
	rb := func(c *components.Config, on bool) *rebalancer {
		return &rebalancer{cfg: c, opts: UpOptions{Rebalance: on, RebalanceTimeout: time.Second}, log: slog.Default(),
			// Nothing may be dialled: a cluster API that answers nothing.
			finder: apiFinder{cfg: c, explicit: "http://127.0.0.1:1", probe: time.Millisecond}}
	}
	for name, tc := range map[string]struct {
		rb     *rebalancer
		r      rollout
		reason string
	}{
		"turned off":    {rb(cfg(3), false), rollout{PodsChanged: true}, "turned off"},
		"no pod change": {rb(cfg(3), true), rollout{StatefulSetOp: "same"}, "no pod was restarted"},
		"new cluster":   {rb(cfg(3), true), rollout{StatefulSetOp: "create"}, "the cluster was created"},
		"one node":      {rb(cfg(1), true), rollout{PodsChanged: true}, "one node"},
	} {
		got := tc.rb.run(context.Background(), tc.r)
		assert.Equal(t, RebalanceSkipped, got.Status, name)
		assert.Contains(t, got.Reason, tc.reason, name)
	}
}

// An API that does not answer is reported with the way to do it by hand;
// it is not an error of up.
func TestRebalanceUnreachableSaysHowByHand(t *testing.T) {
	c, err := components.ParseConfig(components.MapLookup(map[string]string{"warren:namespace": "mq"}, nil))
	require.NoError(t, err)
	rb := &rebalancer{cfg: c, opts: UpOptions{Rebalance: true, RebalanceTimeout: 10 * time.Second}, log: slog.Default(), poll: 10 * time.Millisecond,
		finder: apiFinder{cfg: c, explicit: "http://127.0.0.1:1", probe: time.Millisecond}}
	got := rb.run(context.Background(), rollout{PodsChanged: true})
	assert.Equal(t, RebalanceNotDone, got.Status)
	assert.Contains(t, got.Reason, "127.0.0.1:1")
	assert.Equal(t, "kubectl -n mq exec rabbitmq-server-0 -c rabbitmq -- rabbitmq-queues rebalance quorum", got.Manual)
}

func TestKubectlArgsFollowTheStack(t *testing.T) {
	args, cleanup, err := apiFinder{}.kubectlArgs()
	require.NoError(t, err)
	cleanup()
	assert.Empty(t, args, "kubectl's own defaults (KUBECONFIG, ~/.kube/config)")

	args, cleanup, err = apiFinder{kubeconfig: "/etc/kube.yaml", kubeContext: "prod"}.kubectlArgs()
	require.NoError(t, err)
	cleanup()
	assert.Equal(t, []string{"--kubeconfig", "/etc/kube.yaml", "--context", "prod"}, args)

	args, cleanup, err = apiFinder{kubeconfig: "apiVersion: v1\nkind: Config\n"}.kubectlArgs()
	require.NoError(t, err)
	require.Len(t, args, 2)
	b, err := os.ReadFile(args[1])
	require.NoError(t, err, "the contents went to a file")
	assert.True(t, strings.HasPrefix(string(b), "apiVersion: v1"))
	cleanup()
	assert.NoFileExists(t, args[1], "and the file is removed")
}
