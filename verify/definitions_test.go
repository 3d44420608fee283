package verify

import (
	"context"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/brokertest"
)

// The target holds what the plan imported (classic queues converted to
// quorum) and passes; then each kind of difference fails its kind's check.
func TestDefinitionsEqualThePlannedExport(t *testing.T) {
	e := brokertest.New(t)
	ctx := context.Background()
	ch := e.Channel(t, e.Source, 0)
	require.NoError(t, ch.ExchangeDeclare("orders", "topic", true, false, false, false, nil))
	for _, q := range []string{"q-orders", "q-audit"} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil) // classic: the plan converts them
		require.NoError(t, err)
		require.NoError(t, ch.QueueBind(q, "order.#", "orders", false, amqp.Table{"x-note": q}))
	}
	put(t, e.SourceAPI, "policies/"+e.Vhost+"/ttl", map[string]any{
		"pattern": "^q-", "apply-to": "queues", "definition": map[string]any{"message-ttl": 60000},
	})

	choices := definitions.Options{KeepVhostDefaultQueueType: true}
	src, err := definitions.Export(ctx, e.SourceAPI)
	require.NoError(t, err)
	plan, err := definitions.NewPlan(src.Only(e.Vhost), choices)
	require.NoError(t, err)
	_, err = definitions.Import(ctx, e.TargetAPI, plan)
	require.NoError(t, err)

	o := options(t, e, AreaDefinitions)
	o.Plan = choices
	r := run(t, o)
	require.NoError(t, r.Err())
	assert.Contains(t, find(t, r, "definitions queue").Detail, "2 queue(s) as planned")
	assert.Contains(t, find(t, r, "definitions binding").Detail, "2 binding(s) as planned")
	assert.Empty(t, r.Differences)

	// A migration hands over its plan's result instead of a source to
	// export again: the same verdict, with no source at all.
	withWant := o
	withWant.Source, withWant.Want = nil, plan.Want()
	r = run(t, withWant)
	require.NoError(t, r.Err())
	assert.Contains(t, find(t, r, "definitions queue").Detail, "2 queue(s) as planned")

	// Without the migration's choices the plan would have changed the
	// vhost's default queue type too, which the target does not have.
	o.Plan = definitions.Options{}
	assert.Equal(t, Fail, find(t, run(t, o), "definitions vhost").Status)
	o.Plan = choices

	// A missing binding, an unexpected queue and a changed policy.
	tch := e.Channel(t, e.Target, 0)
	require.NoError(t, tch.QueueUnbind("q-audit", "order.#", "orders", amqp.Table{"x-note": "q-audit"}))
	_, err = tch.QueueDeclare("stray", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	put(t, e.TargetAPI, "policies/"+e.Vhost+"/ttl", map[string]any{
		"pattern": "^q-", "apply-to": "queues", "definition": map[string]any{"message-ttl": 1000},
	})
	r = run(t, o)
	err = r.Err()
	require.Error(t, err)
	for kind, want := range map[string]string{
		"binding": "binding " + e.Vhost + "/orders→queue q-audit key order.# args {\"x-note\":\"q-audit\"} missing",
		"queue":   "queue " + e.Vhost + "/stray unexpected",
		"policy":  "message-ttl",
	} {
		c := find(t, r, "definitions "+kind)
		assert.Equal(t, Fail, c.Status, kind)
		assert.Contains(t, c.Detail, want, kind)
		assert.Contains(t, err.Error(), c.Name)
	}
	assert.Len(t, r.Differences, 3)
	r = run(t, withWant)
	assert.Len(t, r.Differences, 3, "the plan's result finds the same differences")
	assert.Equal(t, Pass, find(t, r, "definitions exchange").Status)
}

func TestDefinitionsNeedASourceAndValidChoices(t *testing.T) {
	e := brokertest.New(t)
	o := options(t, e, AreaDefinitions)
	o.Source = nil
	c := find(t, run(t, o), "definitions")
	assert.Equal(t, Skip, c.Status)
	assert.Contains(t, c.Detail, "--source-url")

	o.Plan = definitions.Options{Mirroring: "sideways"}
	_, err := Run(context.Background(), o)
	assert.ErrorContains(t, err, "sideways", "bad plan choices are refused before any check runs")
}

// A queue the drain deleted from the source (auto-delete, gone with the
// shovel) is on the target only. With the drain report saying so it is
// expected; without it, or when the report does not say the drain deleted
// it, it is unexpected.
func TestDefinitionsExpectQueuesTheDrainDeleted(t *testing.T) {
	e := brokertest.New(t)
	ch := e.Channel(t, e.Target, 0)
	require.NoError(t, ch.ExchangeDeclare("fan", "fanout", true, false, false, false, nil))
	_, err := ch.QueueDeclare("cache.autodelete", false, true, false, false, amqp.Table{"x-queue-type": "classic"})
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("cache.autodelete", "", "fan", false, nil))
	sch := e.Channel(t, e.Source, 0)
	require.NoError(t, sch.ExchangeDeclare("fan", "fanout", true, false, false, false, nil))

	o := options(t, e, AreaDefinitions)
	o.Plan = definitions.Options{KeepVhostDefaultQueueType: true}
	r := run(t, o)
	assert.Equal(t, Fail, find(t, r, "definitions queue").Status, "without a drain report the queue is unexpected")
	assert.Equal(t, Fail, find(t, r, "definitions binding").Status)

	o.DrainReport = []QueueCount{{Vhost: e.Vhost, Queue: "cache.autodelete", SourceBefore: 3, Moved: 3}}
	assert.Equal(t, Fail, find(t, run(t, o), "definitions queue").Status, "drained, but not deleted by the drain")

	o.DrainReport[0].SourceDeleted = true
	r = run(t, o)
	require.NoError(t, r.Err())
	assert.Equal(t, Pass, find(t, r, "definitions queue").Status)
	assert.Equal(t, Pass, find(t, r, "definitions binding").Status)
	assert.Empty(t, r.Differences)
}
