package loadcheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"golang.org/x/time/rate"

	"github.com/warrenmq/warren/appclient"
)

// QueuePrefix starts the name of every queue a load check declares.
const QueuePrefix = "warren.bench."

// Headers every message carries: its sequence number in the round, and
// when the producer handed it to Publish (Unix nanoseconds).
const (
	HeaderSeq  = "warren-bench-seq"
	HeaderSent = "warren-bench-sent-ns"
)

// queueArgs protect users' queues and clean up after a crash:
//   - x-expires lets the broker delete the queue 10 minutes after its
//     last consumer left, if warren died before deleting it;
//   - x-dead-letter-exchange names an exchange that does not exist, and
//     queue arguments override a policy's, so nothing is ever
//     dead-lettered into a user queue.
func queueArgs() amqp.Table {
	return amqp.Table{
		"x-expires":              int32(10 * time.Minute / time.Millisecond),
		"x-dead-letter-exchange": QueuePrefix + "nowhere",
	}
}

// Timing of a round's end.
const (
	// settleTimeout bounds the wait for confirms of messages already
	// published when a round ends.
	settleTimeout = 30 * time.Second
	// stallTimeout ends a round in which nothing was published or
	// consumed for this long (a memory or disk alarm, say).
	stallTimeout = 30 * time.Second
	// tick is how often progress is reported and the goal checked.
	tick = 200 * time.Millisecond
)

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// round measures one side with one consumer count, on a queue of its
// own that it deletes at the end, whatever happens.
func round(ctx context.Context, o Options, s side, consumers int) (rd Round, err error) {
	rd = Round{Side: s.name, Broker: s.ep.String(), Consumers: consumers, Producers: o.Producers, Queue: QueuePrefix + randomID()}
	prog := o.Progress.Round(s.name, consumers, Goal{Duration: o.Duration, Count: o.Count})
	defer func() {
		if err != nil && rd.Error == "" {
			rd.Error = err.Error()
		}
		prog.Done(rd)
	}()

	admin, err := s.dial(ctx, o, "admin", 0)
	if err != nil {
		return rd, err
	}
	defer admin.Close()
	qtype := o.queueType(s.name)
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	err = admin.Declare(dctx, appclient.Queue{Name: rd.Queue, Type: appclient.QueueType(qtype), Args: queueArgs()})
	cancel()
	var refused *amqp.Error
	if errors.As(err, &refused) && refused.Code == amqp.AccessRefused {
		return rd, fmt.Errorf("%w: the %s refused to declare queue %q in vhost %q: the AMQP user needs configure, write and read "+
			"permissions on %s* there (rabbitmqctl set_permissions): %w", ErrPreflight, s.name, rd.Queue, o.Vhost, QueuePrefix, err)
	}
	if err != nil {
		return rd, fmt.Errorf("load check: %s: declare its queue: %w", s.name, err)
	}
	defer func() {
		derr := deleteQueue(ctx, o, s, rd.Queue)
		switch {
		case derr != nil:
			err = errors.Join(err, derr)
		case err != nil:
			err = fmt.Errorf("%w (its queue %s is deleted: nothing of the load check is left)", err, rd.Queue)
		}
	}()
	rd.QueueType = typeOf(ctx, o, s, rd.Queue, qtype)

	t := &tally{}
	var clients []*appclient.Client
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()

	// Consumers first, so that the first messages find them subscribed.
	handler := appclient.HandlerFunc(func(hctx context.Context, d amqp.Delivery) error {
		now := time.Now()
		seq, okSeq := d.Headers[HeaderSeq].(int64)
		sent, okSent := d.Headers[HeaderSent].(int64)
		if okSeq && okSent && seq >= 0 {
			t.received(uint64(seq), now.Sub(time.Unix(0, sent)), now)
		}
		if o.Work > 0 {
			select {
			case <-time.After(o.Work):
			case <-hctx.Done():
				return hctx.Err()
			}
		}
		return nil
	})
	consumerType := appclient.Classic
	if rd.QueueType == Quorum {
		consumerType = appclient.Quorum
	}
	var subs []*appclient.Consumer
	for i := range consumers {
		c, err := s.dial(ctx, o, fmt.Sprintf("consumer %d", i+1), i)
		if err != nil {
			return rd, err
		}
		clients = append(clients, c)
		cctx, cancel := context.WithTimeout(ctx, dialTimeout)
		sub, err := c.Consume(cctx, rd.Queue, handler, appclient.ConsumerOptions{Prefetch: o.Prefetch, Concurrency: 1, QueueType: consumerType,
			Tag: fmt.Sprintf("%s-%d", ConnectionPrefix, i+1)})
		cancel()
		if err != nil {
			return rd, fmt.Errorf("load check: %s: consumer %d: %w", s.name, i+1, err)
		}
		subs = append(subs, sub)
	}
	stopConsumers := func() {
		var wg sync.WaitGroup
		for _, sub := range subs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				_ = sub.Shutdown(sctx)
			}()
		}
		wg.Wait()
		subs = nil
	}
	defer func() { stopConsumers() }()

	pubs := make([]*appclient.Publisher, 0, o.Producers)
	for i := range o.Producers {
		c, err := s.dial(ctx, o, fmt.Sprintf("producer %d", i+1), i)
		if err != nil {
			return rd, err
		}
		clients = append(clients, c)
		pubs = append(pubs, c.NewPublisher(appclient.PublisherOptions{MaxInFlight: o.InFlight}))
	}

	start := time.Now()
	stopping, producersDone, abandon := publish(ctx, o, rd.Queue, pubs, t)
	defer abandon()

	// Wait for the goal, reporting progress.
	var stallErr error
	lastMove, lastSnap := time.Now(), t.snapshot(0)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-ticker.C:
		}
		snap := t.snapshot(time.Since(start))
		prog.Update(snap)
		if snap.Published != lastSnap.Published || snap.Confirmed != lastSnap.Confirmed || snap.Consumed != lastSnap.Consumed {
			lastMove, lastSnap = time.Now(), snap
		}
		settled := false
		select {
		case <-producersDone:
			settled = true
		default:
		}
		switch {
		case o.Duration > 0 && snap.Elapsed >= o.Duration:
			break wait
		case o.Count > 0 && settled && t.uniqueCount() >= t.confirmed.Load():
			break wait // every message confirmed has arrived
		case time.Since(lastMove) > stallTimeout:
			stallErr = fmt.Errorf("nothing was published or consumed for %s (a memory or disk alarm on the %s?); the round was cut short",
				stallTimeout, s.name)
			break wait
		}
	}
	end := time.Now()
	stopping()
	select {
	case <-producersDone:
	case <-time.After(settleTimeout):
		o.Logger.Warn("messages still unconfirmed after the round; giving up on them", "side", s.name, "wait", settleTimeout)
	}
	abandon()
	<-producersDone
	stopConsumers()
	rd.Published = t.published.Load()
	for _, p := range pubs {
		rd.Republished += p.Stats().Republished
	}
	rd.Confirmed, rd.Failed = t.confirmed.Load(), t.failed.Load()
	rd.Consumed = t.uniqueCount()
	rd.Duplicates = t.consumed.Load() - rd.Consumed
	rd.Seconds = end.Sub(start).Seconds()
	// Rates run to the last delivery and the last confirm: consumers that
	// kept up idle after the producers' last message, and the wait for
	// the end of the round is not theirs.
	rd.Throughput = perSecond(rd.Consumed, start, t.lastDelivery(), end)
	rd.PublishRate = perSecond(rd.Confirmed, start, t.lastConfirmed(), end)
	rd.Latency = t.latency()
	rd.Lag = max(0, rd.Confirmed-rd.Consumed)
	if depth, err := queueDepth(ctx, admin, rd.Queue); err == nil {
		rd.Lag = max(rd.Lag, int64(depth))
	} else {
		o.Logger.Warn("cannot read the queue's depth; the lag is counted from confirms and deliveries", "side", s.name, "err", err)
	}
	if msg := t.firstErr.Load(); msg != nil {
		rd.Error = fmt.Sprintf("%d message(s) not published; the first: %s", rd.Failed, *msg)
	}
	if stallErr != nil {
		rd.Error = stallErr.Error()
	}
	prog.Update(t.snapshot(end.Sub(start)))
	if err := ctx.Err(); err != nil {
		return rd, fmt.Errorf("load check interrupted during the %s's round with %d consumer(s); run it again for figures: %w", s.name, consumers, err)
	}
	return rd, nil
}

// perSecond is n over the time from start to last, or to end when last
// is zero or later.
func perSecond(n int64, start, last, end time.Time) float64 {
	until := end
	if !last.IsZero() && last.Before(end) {
		until = last
	}
	if d := until.Sub(start); d > 0 && n > 0 {
		return float64(n) / d.Seconds()
	}
	return 0
}

// publish starts every producer's publishing goroutines: InFlight per
// producer, each publishing one message at a time and waiting for its
// confirm, so that each producer keeps InFlight messages unconfirmed.
// stop ends publishing after the messages in flight; done is closed once
// every goroutine has returned; abandon gives up on the unconfirmed.
func publish(ctx context.Context, o Options, queue string, pubs []*appclient.Publisher, t *tally) (stop func(), done <-chan struct{}, abandon func()) {
	pctx, cancel := context.WithCancel(ctx)
	var halt atomic.Bool
	var next atomic.Int64
	var limiter *rate.Limiter
	if o.Rate > 0 {
		// A burst of 1/50 s worth of messages keeps timer granularity
		// from capping high rates.
		limiter = rate.NewLimiter(rate.Limit(o.Rate), max(1, o.Rate/50))
	}
	body := make([]byte, o.Size)
	prefix := randomID() + "-"
	var wg sync.WaitGroup
	for _, pub := range pubs {
		for range o.InFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !halt.Load() {
					if limiter != nil && limiter.Wait(pctx) != nil {
						return
					}
					seq := next.Add(1) - 1
					if o.Count > 0 && seq >= int64(o.Count) || halt.Load() {
						return
					}
					t.published.Add(1)
					err := pub.Publish(pctx, "", queue, amqp.Publishing{
						MessageId:    prefix + strconv.FormatInt(seq, 10),
						DeliveryMode: amqp.Persistent,
						Headers:      amqp.Table{HeaderSeq: seq, HeaderSent: time.Now().UnixNano()},
						Body:         body,
					})
					switch {
					case err == nil:
						t.confirm()
					case pctx.Err() != nil:
						return
					default:
						t.fail(err)
						select { // a queue gone or a refusing broker: do not spin
						case <-time.After(100 * time.Millisecond):
						case <-pctx.Done():
							return
						}
					}
				}
			}()
		}
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, p := range pubs {
			_ = p.Close(ctx)
		}
		close(finished)
	}()
	return func() { halt.Store(true) }, finished, cancel
}

// typeOf is the queue's type: the one asked for, or the one the vhost's
// default gave it, as the HTTP API reports it (which can lag a moment).
func typeOf(ctx context.Context, o Options, s side, queue, asked string) string {
	if asked != "" {
		return asked
	}
	for range 10 {
		q, err := s.api.GetQueue(ctx, o.Vhost, queue)
		if err == nil && q.Type != "" {
			return q.Type
		}
		select {
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
			return "default"
		}
	}
	return "default"
}

// queueDepth reads the queue's ready messages with a passive declare,
// which is current (the HTTP API's count lags).
func queueDepth(ctx context.Context, c *appclient.Client, queue string) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ch, err := c.Channel(ctx)
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	return q.Messages, nil
}

// deleteQueue deletes the round's queue, even when ctx has ended.
func deleteQueue(ctx context.Context, o Options, s side, queue string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.api.DeleteQueue(ctx, o.Vhost, queue); err != nil {
		return fmt.Errorf("load check: the %s kept its queue %q in vhost %q (the broker deletes it 10 minutes after its last consumer left, "+
			"or: rabbitmqctl delete_queue -p %s %s): %w", s.name, queue, o.Vhost, o.Vhost, queue, err)
	}
	return nil
}
