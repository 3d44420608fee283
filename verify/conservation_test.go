package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/shovel"
)

func TestReadDrainReport(t *testing.T) {
	// The shape `warren drain -o json` writes, with fields verify ignores.
	counts, err := ReadDrainReport(strings.NewReader(`{"side":"x","queues":[
		{"vhost":"/","queue":"orders","shovel":"s","source_before":3,"target_before":2,"moved":3,"target_after":5,"status":"drained"},
		{"vhost":"/","queue":"cache","source_before":1,"target_before":0,"moved":1,"source_deleted":true}],
		"messages":4}`))
	require.NoError(t, err)
	assert.Equal(t, []QueueCount{{Vhost: "/", Queue: "orders", SourceBefore: 3, TargetBefore: 2, Moved: 3},
		{Vhost: "/", Queue: "cache", SourceBefore: 1, Moved: 1, SourceDeleted: true}}, counts)

	for doc, want := range map[string]string{
		`not json`:                   "not the JSON",
		`{"messages":3}`:             `no "queues" array`,
		`{"queues":[{"vhost":"/"}]}`: "queue entry 1 has no vhost or queue name",
		`{"queues":[{"vhost":"/","queue":"q","moved":-1}]}`: "negative count",
	} {
		_, err := ReadDrainReport(strings.NewReader(doc))
		assert.ErrorContains(t, err, want, doc)
	}
	_, err = LoadDrainReport(filepath.Join(t.TempDir(), "missing.json"))
	assert.ErrorContains(t, err, "open drain report")
}

func TestConservationComparesCountsWithTheTarget(t *testing.T) {
	e := brokertest.New(t)
	ch := e.Channel(t, e.Target, 0)
	_, err := ch.QueueDeclare("orders", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	publish(t, ch, "orders", 5)

	path := filepath.Join(t.TempDir(), "drain.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"queues":[
		{"vhost":"`+e.Vhost+`","queue":"orders","source_before":3,"target_before":2,"moved":3},
		{"vhost":"`+e.Vhost+`","queue":"short","source_before":4,"target_before":0,"moved":3},
		{"vhost":"`+e.Vhost+`","queue":"orders-miscounted","source_before":1,"target_before":1,"moved":1}]}`), 0o644))
	counts, err := LoadDrainReport(path)
	require.NoError(t, err)
	_, err = ch.QueueDeclare("orders-miscounted", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	publish(t, ch, "orders-miscounted", 3)

	o := options(t, e, AreaConservation)
	o.DrainReport = counts
	r := run(t, o)

	ok := find(t, r, "conservation "+e.Vhost+"/orders")
	assert.Equal(t, Pass, ok.Status)
	assert.Contains(t, ok.Detail, "the target holds 5 = 2 before + 3 from the source")

	gone := find(t, r, "conservation "+e.Vhost+"/short")
	assert.Equal(t, Fail, gone.Status)
	assert.Contains(t, gone.Detail, "does not exist on the target")

	off := find(t, r, "conservation "+e.Vhost+"/orders-miscounted")
	assert.Equal(t, Fail, off.Status)
	assert.Contains(t, off.Detail, "1 more than expected: the target holds 3, want 2 (1 before + 1 from the source), and the source redelivered only 0")

	// Duplicates within the bound the drain's redeliveries explain are a
	// warning, not a failure.
	o.DrainReport = []QueueCount{{Vhost: e.Vhost, Queue: "orders-miscounted", SourceBefore: 1, TargetBefore: 1, Moved: 2, DuplicateBound: 1}}
	c := find(t, run(t, o), "conservation "+e.Vhost+"/orders-miscounted")
	assert.Equal(t, Warn, c.Status)
	assert.Contains(t, c.Detail, "1 duplicates, within the bound of 1")

	// moved != source_before fails even when the depth adds up.
	o.DrainReport = []QueueCount{{Vhost: e.Vhost, Queue: "orders", SourceBefore: 4, TargetBefore: 1, Moved: 3}}
	c = find(t, run(t, o), "conservation "+e.Vhost+"/orders")
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Detail, "the drain moved 3 of the 4 messages the source held")

	// Without a report the check says how to give one.
	o.DrainReport = nil
	c = find(t, run(t, o), "conservation")
	assert.Equal(t, Skip, c.Status)
	assert.Contains(t, c.Detail, "--drain-report")
}

// The drain's own report, as `warren drain -o json` writes it, is what the
// conservation check reads: a real drain passes, and a message taken from
// the target afterwards fails it.
func TestConservationAfterARealDrain(t *testing.T) {
	e := brokertest.New(t)
	src, dst := e.Channel(t, e.Source, 0), e.Channel(t, e.Target, 0)
	_, err := src.QueueDeclare("orders", true, false, false, false, nil)
	require.NoError(t, err)
	_, err = dst.QueueDeclare("orders", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	publish(t, src, "orders", 40)
	publish(t, dst, "orders", 2)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	drained, err := shovel.Drain(ctx, shovel.Options{Source: e.Source, Target: e.Target, Vhosts: []string{e.Vhost}})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, json.NewEncoder(&buf).Encode(drained))
	counts, err := ReadDrainReport(&buf)
	require.NoError(t, err)
	require.Equal(t, []QueueCount{{Vhost: e.Vhost, Queue: "orders", SourceBefore: 40, TargetBefore: 2, Moved: 40}}, counts)

	o := options(t, e, AreaConservation)
	o.DrainReport = counts
	c := find(t, run(t, o), "conservation "+e.Vhost+"/orders")
	assert.Equal(t, Pass, c.Status)
	assert.Contains(t, c.Detail, "the target holds 42 = 2 before + 40 from the source")

	_, ok, err := dst.Get("orders", true)
	require.NoError(t, err)
	require.True(t, ok)
	c = find(t, run(t, o), "conservation "+e.Vhost+"/orders")
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Detail, "1 lost: the target holds 41, want 42")
}
