package appclient_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/appclient"
	"github.com/warrenmq/warren/internal/brokertest"
)

// calls counts handler calls per message id.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[id]++
	return c.n[id]
}

func (c *calls) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

func (c *calls) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := 0
	for _, n := range c.n {
		t += n
	}
	return t
}

// deadLetterSetup declares a fanout dead-letter exchange "dlx" bound to
// queue "dlq", and queue "work" that dead-letters into it, and returns a
// channel on which the dead-lettered deliveries arrive.
func deadLetterSetup(t *testing.T, c *appclient.Client, work appclient.Queue) <-chan amqp.Delivery {
	t.Helper()
	ctx := context.Background()
	work.DeadLetterExchange = "dlx"
	require.NoError(t, c.Declare(ctx,
		appclient.Exchange{Name: "dlx", Kind: amqp.ExchangeFanout},
		appclient.Queue{Name: "dlq", Type: work.Type},
		appclient.Binding{Exchange: "dlx", Queue: "dlq"},
		work,
	))
	dead := make(chan amqp.Delivery, 10)
	cons, err := c.Consume(ctx, "dlq", appclient.HandlerFunc(func(_ context.Context, d amqp.Delivery) error {
		dead <- d
		return nil
	}), appclient.ConsumerOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cons.Shutdown(context.Background()) })
	return dead
}

// failing is a handler that fails on "poison" (permanently when
// permanent is set) and records every call.
func failing(seen *calls, permanent bool) appclient.Handler {
	return appclient.HandlerFunc(func(_ context.Context, d amqp.Delivery) error {
		seen.add(d.MessageId)
		if d.MessageId != "poison" {
			return nil
		}
		if err := d.Ack(false); err == nil {
			return errors.New("the handler could ack by hand")
		}
		err := fmt.Errorf("cannot process attempt %d", appclient.Attempt(d))
		if permanent {
			return appclient.Permanent(err)
		}
		return err
	})
}

// publishPoison publishes "poison" among good messages.
func publishPoison(t *testing.T, c *appclient.Client) {
	t.Helper()
	p := c.NewPublisher(appclient.PublisherOptions{})
	for _, id := range []string{"good-1", "poison", "good-2"} {
		require.NoError(t, p.Publish(context.Background(), "", "work", amqp.Publishing{MessageId: id, Body: []byte(id)}))
	}
	require.NoError(t, p.Close(context.Background()))
}

func waitDead(t *testing.T, dead <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case d := <-dead:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("nothing was dead-lettered within 30s")
		return amqp.Delivery{}
	}
}

// On a quorum queue the broker counts deliveries (x-delivery-count): the
// handler sees a failing message MaxAttempts times, then the message goes
// to the dead-letter exchange.
func TestQuorumQueueDeadLettersAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	c := dial(t, "quorum-attempts", urls(e.Target, 0))
	dead := deadLetterSetup(t, c, appclient.Queue{Name: "work", Type: appclient.Quorum, DeliveryLimit: 10})
	var seen calls
	cons, err := c.Consume(context.Background(), "work", failing(&seen, false), appclient.ConsumerOptions{MaxAttempts: 3})
	require.NoError(t, err)
	publishPoison(t, c)

	d := waitDead(t, dead)
	assert.Equal(t, "poison", d.MessageId)
	assert.Equal(t, 3, seen.get("poison"), "handler attempts")
	assert.Equal(t, 1, seen.get("good-1"))
	assert.Equal(t, 1, seen.get("good-2"))
	deaths, _ := d.Headers["x-death"].([]any)
	require.Len(t, deaths, 1, "x-death header: %v", d.Headers)
	assert.Equal(t, "rejected", deaths[0].(amqp.Table)["reason"])
	require.NoError(t, cons.Shutdown(context.Background()))
	st := cons.Stats()
	assert.Equal(t, int64(2), st.Requeued)
	assert.Equal(t, int64(1), st.DeadLettered)
	assert.Zero(t, st.Republished)
}

// A classic queue keeps no delivery count. The consumer counts failed
// attempts in the x-appclient-attempts header: it publishes a failed
// message again to the queue with the count raised, acks the original,
// and dead-letters the message after MaxAttempts.
func TestClassicQueueCountsAttemptsInAHeader(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	c := dial(t, "classic-attempts", urls(e.Source))
	dead := deadLetterSetup(t, c, appclient.Queue{Name: "work", Type: appclient.Classic})
	var seen calls
	cons, err := c.Consume(context.Background(), "work", failing(&seen, false), appclient.ConsumerOptions{MaxAttempts: 3})
	require.NoError(t, err)
	publishPoison(t, c)

	d := waitDead(t, dead)
	assert.Equal(t, "poison", d.MessageId)
	assert.Equal(t, []byte("poison"), d.Body)
	assert.Equal(t, 3, seen.get("poison"), "handler attempts")
	assert.EqualValues(t, 2, d.Headers[appclient.AttemptsHeader], "two failures recorded before the last attempt")
	assert.Equal(t, 3, appclient.Attempt(d), "the dead-lettered copy says which attempt failed last")
	require.NoError(t, cons.Shutdown(context.Background()))
	st := cons.Stats()
	assert.Equal(t, int64(2), st.Republished)
	assert.Equal(t, int64(1), st.DeadLettered)
	assert.Zero(t, st.Requeued)
}

// A Permanent error dead-letters at once.
func TestPermanentErrorDeadLettersAtOnce(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	c := dial(t, "permanent", urls(e.Target, 1))
	dead := deadLetterSetup(t, c, appclient.Queue{Name: "work", Type: appclient.Quorum})
	var seen calls
	cons, err := c.Consume(context.Background(), "work", failing(&seen, true), appclient.ConsumerOptions{MaxAttempts: 5})
	require.NoError(t, err)
	publishPoison(t, c)
	assert.Equal(t, "poison", waitDead(t, dead).MessageId)
	assert.Equal(t, 1, seen.get("poison"))
	require.NoError(t, cons.Shutdown(context.Background()))
}

// Shutdown lets running handlers finish and ack, acks nothing else, and
// leaves the prefetched but unprocessed messages in the queue.
func TestShutdownAcksOnlyWhatWasProcessed(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	ctx := context.Background()
	const n = 300
	c := dial(t, "shutdown", urls(e.Target, 2))
	require.NoError(t, c.Declare(ctx, appclient.Queue{Name: "work", Type: appclient.Quorum}))
	p := c.NewPublisher(appclient.PublisherOptions{})
	for i := 0; i < n; i++ {
		require.NoError(t, p.Publish(ctx, "", "work", amqp.Publishing{MessageId: fmt.Sprintf("m-%03d", i)}))
	}
	var seen calls
	var running atomic.Int64
	started := make(chan struct{}, n)
	slow := appclient.HandlerFunc(func(ctx context.Context, d amqp.Delivery) error {
		running.Add(1)
		defer running.Add(-1)
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond) // still running when Shutdown starts
		seen.add(d.MessageId)
		return nil
	})
	cons, err := c.Consume(ctx, "work", slow, appclient.ConsumerOptions{Prefetch: 50, Concurrency: 4})
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		<-started
	}
	require.Positive(t, running.Load(), "handlers are running when Shutdown starts")
	require.NoError(t, cons.Shutdown(ctx))
	handled := seen.total()
	assert.Zero(t, running.Load(), "Shutdown waited for the handlers")
	assert.EqualValues(t, handled, cons.Stats().Acked, "every handled message was acked")
	assert.Equal(t, len(seen.n), handled, "no message was handled twice")

	// What is left in the queue is exactly what was not handled: the
	// prefetched messages went back, and nothing handled did.
	ch, err := c.Channel(ctx)
	require.NoError(t, err)
	defer ch.Close()
	brokertest.Eventually(t, 10*time.Second, func() error {
		q, err := ch.QueueDeclarePassive("work", true, false, false, false, nil)
		if err != nil {
			return err
		}
		if q.Messages != n-handled {
			return fmt.Errorf("queue holds %d messages, want %d (%d handled)", q.Messages, n-handled, handled)
		}
		return nil
	})
	t.Logf("handled and acked %d of %d; %d back in the queue", handled, n, n-handled)

	// A new consumer gets the rest, and nothing twice.
	rest, err := c.Consume(ctx, "work", appclient.HandlerFunc(func(_ context.Context, d amqp.Delivery) error {
		seen.add(d.MessageId)
		return nil
	}), appclient.ConsumerOptions{Prefetch: 100, Concurrency: 8})
	require.NoError(t, err)
	brokertest.Eventually(t, 30*time.Second, func() error {
		if got := seen.total(); got < n {
			return fmt.Errorf("%d of %d handled", got, n)
		}
		return nil
	})
	require.NoError(t, rest.Shutdown(ctx))
	assert.Len(t, seen.n, n)
	assert.Equal(t, n, seen.total(), "no duplicates")
}

// When the queue is deleted under a consumer (the broker cancels the
// subscription), the client declares it again and the consumer resumes.
func TestConsumerResumesAfterItsQueueIsDeleted(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	ctx := context.Background()
	c := dial(t, "deleted", urls(e.Target, 0))
	require.NoError(t, c.Declare(ctx, appclient.Exchange{Name: "x", Kind: amqp.ExchangeFanout},
		appclient.Queue{Name: "q", Type: appclient.Quorum}, appclient.Binding{Exchange: "x", Queue: "q"}))
	got := make(chan string, 10)
	cons, err := c.Consume(ctx, "q", appclient.HandlerFunc(func(_ context.Context, d amqp.Delivery) error {
		got <- d.MessageId
		return nil
	}), appclient.ConsumerOptions{})
	require.NoError(t, err)
	defer cons.Shutdown(ctx)
	require.NoError(t, e.TargetAPI.DeleteQueue(ctx, e.Vhost, "q"))

	p := c.NewPublisher(appclient.PublisherOptions{})
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	brokertest.Eventually(t, 30*time.Second, func() error {
		return p.Publish(pctx, "x", "", amqp.Publishing{MessageId: "after"})
	})
	select {
	case id := <-got:
		assert.Equal(t, "after", id)
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer did not resume")
	}
}

// Consume waits for its subscription only as long as its context allows,
// and says why it could not subscribe.
func TestConsumeAMissingQueueSaysWhy(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	c := dial(t, "missing-queue", urls(e.Source))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Consume(ctx, "nope", appclient.HandlerFunc(func(context.Context, amqp.Delivery) error { return nil }), appclient.ConsumerOptions{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "NOT_FOUND")
	_, err = c.Consume(context.Background(), "q", nil, appclient.ConsumerOptions{Prefetch: -1})
	assert.ErrorContains(t, err, "negative")
}
