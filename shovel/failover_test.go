package shovel_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/shovel"
)

// A target node dies (SIGKILL) in the middle of a drain. Quorum queues keep their
// majority, the shovel is restarted elsewhere, and no message is lost
// (a few may arrive twice: the shovel is at-least-once).
func TestDrainSurvivesTargetNodeStop(t *testing.T) {
	e := brokertest.NewDisruptive(t)
	ctx := context.Background()
	const n = 20000
	src := e.Channel(t, e.Source, 0)
	dst := e.Channel(t, e.Target, 0) // target-1: the node the API is on stays up
	declare(t, src, "ha", nil)
	declare(t, dst, "ha", quorum)
	msgs := make([]amqp.Publishing, n)
	for i := range msgs {
		msgs[i] = amqp.Publishing{MessageId: strconv.Itoa(i), DeliveryMode: amqp.Persistent, Body: []byte("payload " + strconv.Itoa(i))}
	}
	publish(t, src, "ha", msgs)

	opts := drainOpts(e, e.Vhost)
	opts.Prefetch = 50 // slow enough that the stop lands mid-drain
	type result struct {
		r   *shovel.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := shovel.Drain(ctx, opts)
		done <- result{r, err}
	}()

	// Kill the node running the shovel when it is not target-1 (whose HTTP
	// API the lab's endpoint uses), else target-3.
	victim := "target-3"
	brokertest.Eventually(t, 30*time.Second, func() error {
		if depth(t, dst, "ha") < n/10 {
			return fmt.Errorf("drain not under way yet")
		}
		list, err := shovel.List(ctx, e.TargetAPI, shovel.OnTarget)
		if err != nil {
			return err
		}
		for _, s := range list {
			if s.Vhost == e.Vhost && s.Node == "warren-target-2@localhost" {
				victim = "target-2"
			}
		}
		return nil
	})
	t.Logf("killing %s mid-drain", victim)
	require.NoError(t, e.Lab.KillNode(ctx, victim))
	select {
	case res := <-done:
		t.Fatalf("the drain finished (%v) before the node died; make the backlog larger", res.err)
	default:
	}

	res := <-done
	require.NoError(t, res.err)
	require.Len(t, res.r.Queues, 1)
	q := res.r.Queues[0]
	assert.Equal(t, n, q.SourceBefore)
	assert.GreaterOrEqual(t, q.Moved, n)
	assert.Zero(t, depth(t, src, "ha"))

	seen := map[string]int{}
	for _, d := range consumeAll(t, dst, "ha") {
		seen[d.MessageId]++
	}
	for i := 0; i < n; i++ {
		require.Contains(t, seen, strconv.Itoa(i), "message %d lost", i)
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("drained %d messages, %d duplicates after the node stop", n, dups)
	assert.Equal(t, q.Moved-n, dups, "the report counts the duplicates")
}
