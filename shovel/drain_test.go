package shovel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/shovel"
)

var quorum = amqp.Table{"x-queue-type": "quorum"}

// declare creates a queue on a channel and fails the test on error.
func declare(t testing.TB, ch *amqp.Channel, name string, args amqp.Table) {
	t.Helper()
	_, err := ch.QueueDeclare(name, true, false, false, false, args)
	require.NoError(t, err, "declare %s", name)
}

// message i of a backlog: varied sizes and every property a client can set.
func message(i int, size int) amqp.Publishing {
	body := bytes.Repeat([]byte{byte('a' + i%26)}, size)
	return amqp.Publishing{
		Headers:         amqp.Table{"seq": int64(i), "tenant": "acme", "nested": amqp.Table{"k": "v"}},
		ContentType:     "application/octet-stream",
		ContentEncoding: "identity",
		DeliveryMode:    amqp.Persistent,
		Priority:        uint8(i % 5),
		CorrelationId:   "corr-" + strconv.Itoa(i),
		ReplyTo:         "replies",
		Expiration:      "3600000",
		MessageId:       "msg-" + strconv.Itoa(i),
		Timestamp:       time.Unix(1700000000+int64(i), 0),
		Type:            "test.message",
		UserId:          "",
		AppId:           "warren-test",
		Body:            body,
	}
}

// publish sends msgs to queue with publisher confirms.
func publish(t testing.TB, ch *amqp.Channel, queue string, msgs []amqp.Publishing) {
	t.Helper()
	require.NoError(t, ch.Confirm(false))
	ctx := context.Background()
	const window = 500
	for start := 0; start < len(msgs); start += window {
		end := min(start+window, len(msgs))
		var confs []*amqp.DeferredConfirmation
		for _, m := range msgs[start:end] {
			c, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, m)
			require.NoError(t, err)
			confs = append(confs, c)
		}
		for _, c := range confs {
			ok, err := c.WaitContext(ctx)
			require.NoError(t, err)
			require.True(t, ok, "broker nacked a publish")
		}
	}
}

func backlog(n int, size func(i int) int) []amqp.Publishing {
	msgs := make([]amqp.Publishing, n)
	for i := range msgs {
		msgs[i] = message(i, size(i))
	}
	return msgs
}

// consumeAll reads every message of a queue (acking them); it stops once
// no delivery has come for a second.
func consumeAll(t testing.TB, ch *amqp.Channel, queue string) []amqp.Delivery {
	t.Helper()
	require.NoError(t, ch.Qos(500, 0, false))
	tag := "consume-all-" + queue
	deliveries, err := ch.Consume(queue, tag, false, false, false, false, nil)
	require.NoError(t, err)
	defer func() { _ = ch.Cancel(tag, false) }()
	var out []amqp.Delivery
	for {
		select {
		case d := <-deliveries:
			require.NoError(t, d.Ack(false))
			out = append(out, d)
		case <-time.After(time.Second):
			return out
		}
	}
}

func depth(t testing.TB, ch *amqp.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err)
	return q.Messages
}

func drainOpts(e *brokertest.Env, vhosts ...string) shovel.Options {
	return shovel.Options{Source: e.Source, Target: e.Target, Vhosts: vhosts, Poll: 100 * time.Millisecond}
}

// assertSame checks body and every property survived the move. The only
// header allowed to differ is the quorum queue's own x-delivery-count.
func assertSame(t *testing.T, want amqp.Publishing, got amqp.Delivery) {
	t.Helper()
	assert.Equal(t, want.Body, got.Body, "body of %s", want.MessageId)
	headers := amqp.Table{}
	for k, v := range got.Headers {
		if k != "x-delivery-count" {
			headers[k] = v
		}
	}
	assert.Equal(t, want.Headers, headers)
	assert.Equal(t, want.ContentType, got.ContentType)
	assert.Equal(t, want.ContentEncoding, got.ContentEncoding)
	assert.Equal(t, want.DeliveryMode, got.DeliveryMode)
	assert.Equal(t, want.Priority, got.Priority)
	assert.Equal(t, want.CorrelationId, got.CorrelationId)
	assert.Equal(t, want.ReplyTo, got.ReplyTo)
	assert.Equal(t, want.Expiration, got.Expiration)
	assert.Equal(t, want.MessageId, got.MessageId)
	assert.True(t, want.Timestamp.Equal(got.Timestamp), "timestamp %v != %v", want.Timestamp, got.Timestamp)
	assert.Equal(t, want.Type, got.Type)
	assert.Equal(t, want.AppId, got.AppId)
}

func TestDrainMovesEveryMessageUnchanged(t *testing.T) {
	e := brokertest.New(t)
	other := brokertest.VhostName(t)
	e.CreateVhost(t, other)

	sizes := []int{0, 1, 1024, 1 << 20}
	msgs := backlog(40, func(i int) int { return sizes[i%len(sizes)] })
	src := e.Channel(t, e.Source, 0)
	dst := e.Channel(t, e.Target, 1)
	// A classic priority queue on the source becomes a quorum queue on the
	// target (the definitions step decides that; here we declare both).
	declare(t, src, "orders", amqp.Table{"x-max-priority": int32(5)})
	declare(t, dst, "orders", quorum)
	declare(t, src, "audit", nil)
	declare(t, dst, "audit", nil)
	publish(t, src, "orders", msgs)
	publish(t, src, "audit", msgs[:7])
	declare(t, dst, "preexisting", quorum)

	// A second vhost, so the drain covers several.
	ctx := context.Background()
	src2conn, err := e.Source.Dial(ctx, other)
	require.NoError(t, err)
	defer src2conn.Close()
	src2, err := src2conn.Channel()
	require.NoError(t, err)
	dst2conn, err := e.Target.DialNode(ctx, 2, other)
	require.NoError(t, err)
	defer dst2conn.Close()
	dst2, err := dst2conn.Channel()
	require.NoError(t, err)
	declare(t, src2, "jobs", nil)
	declare(t, dst2, "jobs", quorum)
	publish(t, dst2, "jobs", msgs[:3]) // the target already holds some
	publish(t, src2, "jobs", msgs[:11])

	report, err := shovel.Drain(ctx, drainOpts(e, e.Vhost, other))
	require.NoError(t, err)
	require.Len(t, report.Queues, 3)
	byName := map[string]shovel.QueueResult{}
	for _, q := range report.Queues {
		byName[q.Queue] = q
		assert.Equal(t, shovel.StatusDrained, q.Status, q.Detail)
		assert.True(t, q.Conserved(), "%+v", q)
	}
	assert.Equal(t, 40, byName["orders"].Moved)
	assert.Equal(t, 7, byName["audit"].Moved)
	assert.Equal(t, 3, byName["jobs"].TargetBefore)
	assert.Equal(t, 14, byName["jobs"].TargetAfter)
	assert.Equal(t, 58, report.Messages)
	assert.Equal(t, shovel.OnTarget, report.Side)

	assert.Zero(t, depth(t, src, "orders"))
	assert.Zero(t, depth(t, src, "audit"))
	// A priority queue hands out higher priorities first, so match by id.
	got := consumeAll(t, dst, "orders")
	require.Len(t, got, len(msgs))
	byID := map[string]amqp.Delivery{}
	for _, d := range got {
		byID[d.MessageId] = d
	}
	for _, m := range msgs {
		require.Contains(t, byID, m.MessageId)
		assertSame(t, m, byID[m.MessageId])
	}

	// No shovel of ours is left behind.
	left, err := shovel.List(ctx, e.TargetAPI, shovel.OnTarget)
	require.NoError(t, err)
	for _, s := range left {
		assert.NotContains(t, []string{e.Vhost, other}, s.Vhost, "shovel %s left behind", s.Name)
	}

	// A run after success does nothing.
	again, err := shovel.Drain(ctx, drainOpts(e, e.Vhost, other))
	require.NoError(t, err)
	assert.Empty(t, again.Queues)
}

func TestDrainFromSourceSide(t *testing.T) {
	e := brokertest.New(t)
	src := e.Channel(t, e.Source, 0)
	dst := e.Channel(t, e.Target, 0)
	declare(t, src, "q", nil)
	declare(t, dst, "q", quorum)
	msgs := backlog(300, func(int) int { return 100 })
	publish(t, src, "q", msgs)

	opts := drainOpts(e, e.Vhost)
	opts.Side = shovel.OnSource
	report, err := shovel.Drain(context.Background(), opts)
	require.NoError(t, err)
	assert.Equal(t, shovel.OnSource, report.Side)
	require.Len(t, report.Queues, 1)
	assert.Equal(t, 300, report.Queues[0].Moved)
	assert.Len(t, consumeAll(t, dst, "q"), 300)
}

func TestDrainRefusesUnknownVhost(t *testing.T) {
	e := brokertest.New(t)
	src := e.Channel(t, e.Source, 0)
	declare(t, src, "kept", nil)
	publish(t, src, "kept", backlog(3, func(int) int { return 10 }))

	_, err := shovel.Drain(context.Background(), drainOpts(e, e.Vhost+"-typo"))
	require.Error(t, err, "a mistyped vhost must not drain nothing and succeed")
	assert.Contains(t, err.Error(), fmt.Sprintf("no vhost %q", e.Vhost+"-typo"))
	assert.Contains(t, err.Error(), e.Vhost, "the error lists the vhosts the source has")
	assert.Equal(t, 3, depth(t, src, "kept"))
}

// A target queue whose length limit would drop messages (it existed with
// other arguments, or a target policy caps it) is refused before anything
// moves: the shovel's confirms would not mean the messages are kept.
func TestDrainRefusesTargetQueueThatWouldDropMessages(t *testing.T) {
	e := brokertest.New(t)
	src := e.Channel(t, e.Source, 0)
	dst := e.Channel(t, e.Target, 0)
	declare(t, src, "capped-arg", nil)
	declare(t, dst, "capped-arg", amqp.Table{"x-max-length": 5})
	declare(t, src, "capped-policy", nil)
	declare(t, dst, "capped-policy", quorum)
	declare(t, src, "roomy", nil)
	declare(t, dst, "roomy", amqp.Table{"x-max-length": 10})
	for _, q := range []string{"capped-arg", "capped-policy", "roomy"} {
		publish(t, src, q, backlog(10, func(int) int { return 10 }))
	}
	// No waiting for the HTTP API to show the policy on the queue: warren
	// reads the policies themselves.
	require.NoError(t, e.TargetAPI.PutPolicy(context.Background(), broker.Policy{Vhost: e.Vhost, Name: "cap", Pattern: "^capped-policy$",
		ApplyTo: "queues", Definition: map[string]any{"max-length": 3}}))

	// Every limit is checked before anything moves: the queue with room
	// waits too, and the error names both capped queues and their limits.
	_, err := shovel.Drain(context.Background(), drainOpts(e, e.Vhost))
	require.ErrorIs(t, err, shovel.ErrTargetLimit)
	assert.NotErrorIs(t, err, shovel.ErrNotConserved, "nothing was lost")
	assert.Contains(t, err.Error(), `"capped-arg"`)
	assert.Contains(t, err.Error(), "holds at most 5 messages (argument x-max-length")
	assert.Contains(t, err.Error(), "holds at most 3 messages (policy max-length")
	assert.NotContains(t, err.Error(), `"roomy"`, "a limit with room for the backlog is fine")
	for _, q := range []string{"capped-arg", "capped-policy", "roomy"} {
		assert.Equal(t, 10, depth(t, src, q), "nothing may leave the source for %s", q)
		assert.Zero(t, depth(t, dst, q))
	}

	// With the policy's limit raised, the rest is refused still; without
	// the capped-arg queue's backlog, everything moves.
	require.NoError(t, e.TargetAPI.PutPolicy(context.Background(), broker.Policy{Vhost: e.Vhost, Name: "cap", Pattern: "^capped-policy$",
		ApplyTo: "queues", Definition: map[string]any{"max-length": 100}}))
	_, err = src.QueuePurge("capped-arg", false)
	require.NoError(t, err)
	report, err := shovel.Drain(context.Background(), drainOpts(e, e.Vhost))
	require.NoError(t, err)
	assert.Len(t, report.Queues, 2)
	assert.Equal(t, 10, depth(t, dst, "roomy"))
	assert.Equal(t, 10, depth(t, dst, "capped-policy"))
}

// A TTL shorter than the migration expires messages on the target: refused
// before anything moves.
func TestDrainRefusesShortTargetTTL(t *testing.T) {
	e := brokertest.New(t)
	src := e.Channel(t, e.Source, 0)
	dst := e.Channel(t, e.Target, 0)
	declare(t, src, "fleeting", nil)
	declare(t, dst, "fleeting", amqp.Table{"x-message-ttl": int32(60000)})
	publish(t, src, "fleeting", backlog(3, func(int) int { return 10 }))
	_, err := shovel.Drain(context.Background(), drainOpts(e, e.Vhost))
	require.ErrorIs(t, err, shovel.ErrTargetLimit)
	assert.Contains(t, err.Error(), "expire after 1m0s (argument x-message-ttl)")
	assert.Equal(t, 3, depth(t, src, "fleeting"))
}

func TestDrainRefusesMissingTargetQueue(t *testing.T) {
	e := brokertest.New(t)
	src := e.Channel(t, e.Source, 0)
	declare(t, src, "nowhere", nil)
	publish(t, src, "nowhere", backlog(5, func(int) int { return 10 }))

	_, err := shovel.Drain(context.Background(), drainOpts(e, e.Vhost))
	require.ErrorIs(t, err, shovel.ErrNoDestination)
	assert.Contains(t, err.Error(), "Import the definitions first")
	assert.Equal(t, 5, depth(t, src, "nowhere"), "nothing may leave the source")
	left, err := shovel.List(context.Background(), e.TargetAPI, shovel.OnTarget)
	require.NoError(t, err)
	for _, s := range left {
		assert.NotEqual(t, e.Vhost, s.Vhost, "no shovel may be declared")
	}
}

// A limit that appears on the target while a drain runs (a policy applied
// by someone else) makes the target drop messages: the drain notices that
// the target holds fewer than the source has handed over, stops the shovel
// at once so that the rest stays on the source, and fails as not
// conserved, naming the loss.
func TestDrainStopsWhenTheTargetDropsMessages(t *testing.T) {
	e := brokertest.New(t)
	src := e.Channel(t, e.Source, 0)
	dst := e.Channel(t, e.Target, 0)
	declare(t, src, "shrinking", nil)
	declare(t, dst, "shrinking", nil) // classic: its passive count is exact
	const n = 20000
	publish(t, src, "shrinking", backlog(n, func(int) int { return 64 }))
	opts := drainOpts(e, e.Vhost)
	opts.Prefetch = 20 // slow enough for the policy to land mid-drain
	go func() {
		brokertest.Eventually(t, 60*time.Second, func() error {
			if depth(t, e.Channel(t, e.Target, 1), "shrinking") < 1000 {
				return errors.New("not under way yet")
			}
			return nil
		})
		assert.NoError(t, e.TargetAPI.PutPolicy(context.Background(), broker.Policy{Vhost: e.Vhost, Name: "late-cap", Pattern: "^shrinking$",
			ApplyTo: "queues", Definition: map[string]any{"max-length": 500}}))
	}()
	report, err := shovel.Drain(context.Background(), opts)
	require.ErrorIs(t, err, shovel.ErrNotConserved)
	assert.Contains(t, err.Error(), "max-length", "the error names the limit")
	require.Len(t, report.Queues, 1)
	q := report.Queues[0]
	assert.Equal(t, shovel.StatusFailed, q.Status)
	assert.Positive(t, q.Lost)
	left := depth(t, src, "shrinking")
	assert.Greater(t, left, 1000, "the shovel was stopped at once: the rest is on the source")
	list, err := shovel.List(context.Background(), e.TargetAPI, shovel.OnTarget)
	require.NoError(t, err)
	for _, s := range list {
		assert.NotEqual(t, e.Vhost, s.Vhost, "the shovel must be gone")
	}
	// What was lost is reported as lost, not hidden: target + source + lost
	// is every message (a shovel stopped mid-window may add duplicates).
	sum := depth(t, dst, "shrinking") + left + q.Lost
	assert.GreaterOrEqual(t, sum, n, "every message is accounted for")
	assert.LessOrEqual(t, sum, n+opts.Prefetch)
}

func TestDrainWithLiveConsumer(t *testing.T) {
	e := brokertest.New(t)
	src := e.Channel(t, e.Source, 0)
	dst := e.Channel(t, e.Target, 0)
	declare(t, src, "busy", nil)
	declare(t, dst, "busy", quorum)
	const n = 200
	publish(t, src, "busy", backlog(n, func(int) int { return 10 }))

	// A consumer that takes messages slowly, as a live application would.
	cons := e.Channel(t, e.Source, 0)
	require.NoError(t, cons.Qos(1, 0, false))
	deliveries, err := cons.Consume("busy", "app", false, false, false, false, nil)
	require.NoError(t, err)
	consumed := make(chan int)
	stop := make(chan struct{})
	go func() {
		c := 0
		for {
			select {
			case d, ok := <-deliveries:
				if !ok {
					consumed <- c
					return
				}
				time.Sleep(20 * time.Millisecond)
				_ = d.Ack(false)
				c++
			case <-stop:
				consumed <- c
				return
			}
		}
	}()

	_, err = shovel.Drain(context.Background(), drainOpts(e, e.Vhost))
	require.ErrorIs(t, err, shovel.ErrLiveClients)
	assert.Contains(t, err.Error(), "--allow-live")

	opts := drainOpts(e, e.Vhost)
	opts.AllowLive, opts.Settle = true, time.Second
	report, err := shovel.Drain(context.Background(), opts)
	require.NoError(t, err)
	close(stop)
	byApp := <-consumed
	require.Len(t, report.Queues, 1)
	arrived := depth(t, dst, "busy")
	assert.Equal(t, n, byApp+arrived, "every message went either to the live consumer or to the target")
	assert.Positive(t, arrived)
}

// interrupt starts a drain of queue "big" and cancels it as soon as some
// messages have arrived at the target, leaving its shovel running.
func interrupt(t *testing.T, e *brokertest.Env, opts shovel.Options) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		brokertest.Eventually(t, 30*time.Second, func() error {
			if d := depth(t, e.Channel(t, e.Target, 1), "big"); d == 0 {
				return errors.New("nothing moved yet")
			}
			return nil
		})
		cancel()
	}()
	report, err := shovel.Drain(ctx, opts)
	require.ErrorIs(t, err, shovel.ErrInterrupted, "an interrupt is not a count failure")
	assert.NotErrorIs(t, err, shovel.ErrNotConserved)
	assert.Contains(t, err.Error(), "the same command again resumes")
	assert.Contains(t, err.Error(), "Nothing is lost")
	require.NotNil(t, report)
	for _, q := range report.Queues {
		assert.Equal(t, shovel.StatusInterrupted, q.Status, q.Queue)
	}
	assert.Empty(t, report.Failed(), "interrupted queues are not failed ones")
}

func bigBacklog(t *testing.T, e *brokertest.Env, n int) (src, dst *amqp.Channel, opts shovel.Options) {
	src = e.Channel(t, e.Source, 0)
	dst = e.Channel(t, e.Target, 0)
	declare(t, src, "big", nil)
	declare(t, dst, "big", quorum)
	publish(t, src, "big", backlog(n, func(int) int { return 64 }))
	opts = drainOpts(e, e.Vhost)
	// A small prefetch slows the shovel so the interruption lands mid-way.
	opts.StatePath, opts.Prefetch = t.TempDir()+"/drain.json", 5
	return src, dst, opts
}

func TestDrainInterruptedThenResumed(t *testing.T) {
	e := brokertest.New(t)
	const n = 5000
	src, dst, opts := bigBacklog(t, e, n)
	interrupt(t, e, opts)

	report, err := shovel.Drain(context.Background(), opts)
	require.NoError(t, err)
	require.Len(t, report.Queues, 1)
	q := report.Queues[0]
	assert.True(t, q.Resumed)
	assert.Equal(t, n, q.SourceBefore, "the first run's counts are kept")
	assert.Equal(t, 0, q.TargetBefore)
	assert.Equal(t, n, q.Moved)
	assert.Equal(t, n, depth(t, dst, "big"))
	assert.Zero(t, depth(t, src, "big"))
}

func TestAbortLeavesEveryMessage(t *testing.T) {
	e := brokertest.New(t)
	const n = 5000
	src, dst, opts := bigBacklog(t, e, n)
	interrupt(t, e, opts)

	removed, err := shovel.Abort(context.Background(), opts, false)
	require.NoError(t, err)
	require.Len(t, removed, 1)
	assert.Equal(t, shovel.Name("big"), removed[0].Name)
	assert.True(t, removed[0].Removed)
	// Requeues land just after the shovel stops: read until two readings agree.
	var s, d, prev int
	brokertest.Eventually(t, 10*time.Second, func() error {
		s, d = depth(t, src, "big"), depth(t, dst, "big")
		if s+d < n || s+d != prev {
			prev = s + d
			return fmt.Errorf("%d on the source + %d on the target, not settled at >= %d", s, d, n)
		}
		return nil
	})
	// Messages the target had but the source had not yet seen acknowledged
	// go back to the source too: at most a prefetch window, never a loss.
	assert.LessOrEqual(t, s+d, n+opts.Prefetch)
	assert.Positive(t, s, "the drain was interrupted early enough to leave messages behind")

	// A drain after an abort resumes with the first run's counts, so the
	// duplicates the abort caused are counted, within the bound of what the
	// source redelivered, instead of hidden behind a new baseline.
	report, err := shovel.Drain(context.Background(), opts)
	require.NoError(t, err)
	require.Len(t, report.Queues, 1)
	q := report.Queues[0]
	assert.True(t, q.Resumed)
	assert.Equal(t, n, q.SourceBefore, "the first run's baseline is kept")
	assert.Equal(t, s+d, depth(t, dst, "big"))
	assert.Equal(t, s+d-n, q.Duplicates, "every extra message is reported")
	assert.LessOrEqual(t, q.Duplicates, q.DuplicateBound)
	assert.Zero(t, q.Lost)
}

func TestParseSide(t *testing.T) {
	for in, want := range map[string]shovel.Side{"": shovel.OnTarget, "auto": shovel.OnTarget, "source": shovel.OnSource, "target": shovel.OnTarget} {
		got, err := shovel.ParseSide(in)
		require.NoError(t, err)
		assert.Equal(t, want, got, in)
	}
	_, err := shovel.ParseSide("sideways")
	require.ErrorContains(t, err, "sideways")
}

func TestSpecNeverDeclaresTheDestination(t *testing.T) {
	v := shovel.Spec{Vhost: "v", Queue: "q", SrcURIs: []string{"amqp://s/v"}, DestURIs: []string{shovel.DirectURI("v")}}.Value()
	assert.NotContains(t, v, "dest-queue", "dest-queue would declare a classic queue when missing")
	assert.Equal(t, "", v["dest-exchange"])
	assert.Equal(t, "q", v["dest-exchange-key"])
	assert.Equal(t, "on-confirm", v["ack-mode"])
	assert.Equal(t, "amqp:///%2F", shovel.DirectURI("/"))
	assert.Equal(t, fmt.Sprint(shovel.DefaultPrefetch), fmt.Sprint(v["src-prefetch-count"]))
}

// A broker that goes away mid-drain must not keep the drain waiting for
// ever: the queue fails after the stall timeout with its shovel left in
// place, and no message is lost (the source keeps what it had not handed
// over; the target keeps what it confirmed).
func TestDrainGivesUpWhenTheSourceGoesAway(t *testing.T) {
	e := brokertest.NewDisruptive(t)
	src := e.Channel(t, e.Source, 0)
	dst := e.Channel(t, e.Target, 0)
	declare(t, src, "lonely", nil)
	declare(t, dst, "lonely", quorum)
	const n = 20000 // at prefetch 1, long enough for the stop to land mid-drain
	publish(t, src, "lonely", backlog(n, func(int) int { return 64 }))

	opts := drainOpts(e, e.Vhost)
	opts.Prefetch, opts.StallTimeout = 1, 3*time.Second
	go func() {
		brokertest.Eventually(t, 20*time.Second, func() error {
			if depth(t, e.Channel(t, e.Target, 1), "lonely") == 0 {
				return errors.New("nothing moved yet")
			}
			return nil
		})
		assert.NoError(t, e.Lab.StopNode(context.Background(), "source"))
	}()
	start := time.Now()
	_, err := shovel.Drain(context.Background(), opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the shovel is left running")
	assert.Less(t, time.Since(start), 2*time.Minute, "the drain must give up, not hang")

	// Back up: every message is on one side or the other.
	require.NoError(t, e.Lab.Up(context.Background()))
	_, err = shovel.Abort(context.Background(), opts, false)
	require.NoError(t, err)
	brokertest.Eventually(t, 20*time.Second, func() error {
		s := depth(t, e.Channel(t, e.Source, 0), "lonely")
		d := depth(t, e.Channel(t, e.Target, 0), "lonely")
		if s+d < n {
			return fmt.Errorf("%d + %d < %d", s, d, n)
		}
		return nil
	})
}
