package appclient_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/appclient"
	"github.com/warrenmq/warren/internal/brokertest"
)

// declareEvents declares a direct exchange "events" and a quorum queue
// "events" bound to it with key "k", on both clients.
func declareEvents(t *testing.T, cs ...*appclient.Client) {
	t.Helper()
	for _, c := range cs {
		require.NoError(t, c.Declare(context.Background(),
			appclient.Exchange{Name: "events"},
			appclient.Queue{Name: "events", Type: appclient.Quorum},
			appclient.Binding{Exchange: "events", Queue: "events", Key: "k"}))
	}
}

// A target node is stopped (rabbitmqctl stop, as a pod deletion would) or
// killed (SIGKILL, as a crash would) under a steady flow, then started
// again. The clients were on that node, and so was the quorum queue's
// leader (the queue was declared there); they move to the next URL, and no
// confirmed message is lost.
func TestTargetNodeDownAndUpLosesNothing(t *testing.T) {
	for _, how := range []string{"stopped", "killed"} {
		t.Run(how, func(t *testing.T) {
			e := brokertest.NewDisruptive(t)
			ctx := context.Background()
			// target-2 first: the lab's HTTP API is target-1's.
			order := urls(e.Target, 1, 2, 0)
			pubC, consC := dial(t, "pub", order), dial(t, "cons", order)
			declareEvents(t, pubC, consC)
			f := startFlow(t, pubC, consC, "events", "k", "events", 200)
			f.waitConfirmed(400, 30*time.Second)

			t.Logf("target-2 %s", how)
			if how == "stopped" {
				require.NoError(t, e.Lab.StopNode(ctx, "target-2"))
			} else {
				require.NoError(t, e.Lab.KillNode(ctx, "target-2"))
			}
			f.waitConfirmed(400, 90*time.Second)
			t.Log("starting target-2 again")
			upCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			require.NoError(t, e.Lab.Up(upCtx))
			f.waitConfirmed(400, 60*time.Second)

			fig := f.finish()
			t.Logf("target node %s and started: %s; publisher %+v; consumer %+v", how, fig, f.pub.Stats(), f.cons.Stats())
			assert.Zero(t, fig.Lost, "confirmed messages never consumed: %v", fig.LostIDs)
			assert.Positive(t, fig.Published)
		})
	}
}

// A memory alarm blocks publishing connections (connection.blocked):
// Publish waits, fails nothing, and carries on when the alarm clears.
// Consumers, on their own connection, keep draining the queue.
func TestPublishWaitsDuringAMemoryAlarm(t *testing.T) {
	e := brokertest.NewDisruptive(t)
	pubC := dial(t, "pub", urls(e.Target, 0))
	consC := dial(t, "cons", urls(e.Target, 1))
	declareEvents(t, pubC, consC)
	f := startFlow(t, pubC, consC, "events", "k", "events", 200)
	f.waitConfirmed(200, 30*time.Second)

	// Alarms are cluster-wide: one node over its watermark blocks every
	// publisher of the cluster.
	e.Ctl(t, "target-1", "set_vm_memory_high_watermark", "absolute", "10MB")
	t.Cleanup(func() { e.Ctl(t, "target-1", "set_vm_memory_high_watermark", "absolute", e.Lab.MemoryLimit) })
	brokertest.Eventually(t, 30*time.Second, func() error {
		if blocked, _ := pubC.Blocked(); !blocked {
			return fmt.Errorf("the publisher's connection is not blocked yet")
		}
		return nil
	})
	before := f.confirmed.Load()
	const blockedFor = 5 * time.Second
	time.Sleep(blockedFor)
	during := f.confirmed.Load() - before
	conns, err := brokertest.Connections(context.Background(), e.TargetAPI, e.Vhost, "pub")
	require.NoError(t, err)
	require.NotEmpty(t, conns)
	t.Logf("while blocked: %d confirmations in %s; the API says the connection is %q", during, blockedFor, conns[0].State)
	assert.Contains(t, []string{"blocked", "blocking"}, conns[0].State)
	assert.Less(t, during, int64(appclient.DefaultMaxInFlight), "publishing stopped while blocked")
	assert.Zero(t, f.pubErrs.Load(), "Publish waits, it does not fail: %v", f.lastError())

	// The wait is bounded by the caller's context, and a publisher can
	// still be closed.
	other := pubC.NewPublisher(appclient.PublisherOptions{})
	pctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = other.Publish(pctx, "events", "k", amqp.Publishing{MessageId: "during-alarm"})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, appclient.ErrUnconfirmed, "held back while blocked, never sent")
	cctx, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	start := time.Now()
	_ = other.Close(cctx)
	assert.Less(t, time.Since(start), 15*time.Second, "Close returns during an alarm")

	e.Ctl(t, "target-1", "set_vm_memory_high_watermark", "absolute", e.Lab.MemoryLimit)
	brokertest.Eventually(t, 30*time.Second, func() error {
		if blocked, _ := pubC.Blocked(); blocked {
			return fmt.Errorf("still blocked")
		}
		return nil
	})
	f.waitConfirmed(200, 30*time.Second)
	fig := f.finish()
	t.Logf("memory alarm for %s: %s; publisher %+v", blockedFor, fig, f.pub.Stats())
	assert.Zero(t, fig.Lost, "confirmed messages never consumed: %v", fig.LostIDs)
	assert.GreaterOrEqual(t, fig.LongestPublishStall, blockedFor, "publishing waited out the alarm")
}
