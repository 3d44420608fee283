package appclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Handler processes one delivery. Returning nil acks it; an error asks for
// a redelivery, up to ConsumerOptions.MaxAttempts, after which the message
// is dead-lettered; an error wrapped by Permanent dead-letters it at once.
// A panic counts as an error.
//
// The consumer acks for the handler: the delivery it gets cannot be acked
// or rejected by hand. ctx ends only when a Shutdown gives up waiting.
type Handler interface {
	HandleDelivery(ctx context.Context, d amqp.Delivery) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, d amqp.Delivery) error

// HandleDelivery calls f.
func (f HandlerFunc) HandleDelivery(ctx context.Context, d amqp.Delivery) error { return f(ctx, d) }

// ConsumerOptions tune a Consumer.
type ConsumerOptions struct {
	// Prefetch is how many unacked messages the broker sends ahead
	// (basic.qos, default 32). Keep it at least Concurrency.
	Prefetch int
	// Concurrency is how many handlers run at once (default 1).
	Concurrency int
	// MaxAttempts bounds how often the handler sees one message
	// (default 5). After the last failed attempt the message is rejected
	// without requeueing: the queue's dead-letter exchange gets it, or the
	// broker drops it when the queue has none.
	MaxAttempts int
	// QueueType says how attempts are counted (see the package
	// documentation). Empty means the type the queue was declared with
	// through this Client, and otherwise Classic, which works on any queue.
	QueueType QueueType
	// Tag prefixes the consumer tag (default: the connection name).
	Tag string
}

// Defaults of ConsumerOptions.
const (
	DefaultPrefetch    = 32
	DefaultMaxAttempts = 5
)

// Consumer consumes a queue with manual acks, resubscribing after a lost
// channel or connection, until Shutdown.
type Consumer struct {
	c     *Client
	log   *slog.Logger
	queue string
	h     Handler
	opts  ConsumerOptions
	typ   QueueType

	stopping  chan struct{}
	stopOnce  sync.Once
	force     context.Context // the handlers' context
	forceStop context.CancelFunc
	done      chan struct{}
	ready     chan struct{}
	readyOnce sync.Once
	lastErr   atomic.Pointer[error] // why the latest subscription failed

	pubMu  sync.Mutex
	pub    *Publisher // republishes failed messages of classic queues
	pubEnd bool       // Shutdown has closed pub: no new one

	stats struct {
		delivered, acked, failed, requeued, republished, deadLettered, ackErrors atomic.Int64
	}
}

// ConsumerStats counts a consumer's deliveries since it started.
type ConsumerStats struct {
	Delivered    int64 // handed to the handler
	Acked        int64 // handled and acked
	Failed       int64 // handler errors and panics
	Requeued     int64 // rejected with requeue (quorum queues count these)
	Republished  int64 // failed on a classic queue: published again with the attempt count, then acked
	DeadLettered int64 // rejected without requeue after the last attempt or a Permanent error
	AckErrors    int64 // acks lost with their channel: the broker delivers those messages again
}

// Consume starts consuming queue with h and waits until the subscription
// is active or ctx ends (then the consumer is stopped and the error says
// why it could not subscribe). The consumer then runs until Shutdown, or
// until the Client is closed.
func (c *Client) Consume(ctx context.Context, queue string, h Handler, opts ConsumerOptions) (*Consumer, error) {
	if queue == "" {
		return nil, errors.New("appclient: consume: no queue named")
	}
	if opts.Prefetch < 0 || opts.Concurrency < 0 || opts.MaxAttempts < 0 {
		return nil, fmt.Errorf("appclient: consume %q: negative option in %+v", queue, opts)
	}
	if opts.QueueType != "" && opts.QueueType != Quorum && opts.QueueType != Classic {
		return nil, fmt.Errorf("appclient: consume %q: queue type %q: want quorum, classic or empty", queue, opts.QueueType)
	}
	if opts.Prefetch == 0 {
		opts.Prefetch = DefaultPrefetch
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 1
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Tag == "" {
		opts.Tag = c.cfg.Name
	}
	if opts.Tag == "" {
		opts.Tag = "appclient"
	}
	typ := opts.QueueType
	if typ == "" {
		typ = c.queueType(queue)
	}
	if typ == "" {
		typ = Classic
	}
	cs := &Consumer{c: c, log: c.log.With("role", "consumer", "queue", queue), queue: queue, h: h, opts: opts, typ: typ,
		stopping: make(chan struct{}), done: make(chan struct{}), ready: make(chan struct{})}
	cs.force, cs.forceStop = context.WithCancel(c.ctx)
	go cs.run()
	select {
	case <-cs.ready:
		return cs, nil
	case <-ctx.Done():
	case <-cs.done:
	}
	_ = cs.Shutdown(context.Background())
	err := ctx.Err()
	if err == nil {
		err = ErrClosed
	}
	if last := cs.lastErr.Load(); last != nil {
		return nil, fmt.Errorf("appclient: consume %q: no subscription (last error: %v): %w", queue, *last, err)
	}
	return nil, fmt.Errorf("appclient: consume %q: no subscription: %w", queue, err)
}

// Shutdown stops the consumer gracefully: it takes no new delivery, lets
// the handlers running finish and ack, then closes its channel, on which
// the broker requeues the messages it had sent ahead and no handler had
// started. Nothing is acked unprocessed. When ctx ends first, the handlers'
// context is cancelled and the channel closed: their messages are not
// acked, and the broker delivers them again.
func (cs *Consumer) Shutdown(ctx context.Context) error {
	cs.stopOnce.Do(func() { close(cs.stopping) })
	var err error
	select {
	case <-cs.done:
	case <-ctx.Done():
		cs.forceStop()
		<-cs.done
		err = fmt.Errorf("appclient: consumer of %q stopped before its handlers finished; the broker redelivers their messages: %w", cs.queue, ctx.Err())
	}
	cs.pubMu.Lock()
	pub := cs.pub
	cs.pubEnd = true
	cs.pubMu.Unlock()
	if pub != nil {
		if perr := pub.Close(ctx); perr != nil && err == nil {
			err = perr
		}
	}
	cs.forceStop()
	return err
}

// Done is closed once the consumer has stopped.
func (cs *Consumer) Done() <-chan struct{} { return cs.done }

// Stats returns the consumer's counters.
func (cs *Consumer) Stats() ConsumerStats {
	s := &cs.stats
	return ConsumerStats{Delivered: s.delivered.Load(), Acked: s.acked.Load(), Failed: s.failed.Load(), Requeued: s.requeued.Load(),
		Republished: s.republished.Load(), DeadLettered: s.deadLettered.Load(), AckErrors: s.ackErrors.Load()}
}

func (cs *Consumer) isStopping() bool {
	select {
	case <-cs.stopping:
		return true
	default:
		return false
	}
}

func (cs *Consumer) run() {
	defer close(cs.done)
	var handlers sync.WaitGroup // every handler still running, whatever its channel
	defer func() {
		waitOr(&handlers, cs.force)
	}()
	sem := make(chan struct{}, cs.opts.Concurrency)
	waits := cs.c.cfg.Backoff.Waits()
	ctx, cancel := context.WithCancel(cs.force)
	defer cancel()
	go func() {
		select {
		case <-cs.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	for !cs.isStopping() {
		ch, err := cs.c.Channel(ctx)
		if err != nil {
			return
		}
		start := time.Now()
		cs.session(ctx, ch, sem, &handlers)
		if cs.isStopping() {
			return
		}
		if time.Since(start) > 10*time.Second {
			waits.Reset()
		}
		select {
		case <-time.After(waits.Next()):
		case <-ctx.Done():
			return
		}
	}
}

// waitOr waits for wg, or until ctx ends.
func waitOr(wg *sync.WaitGroup, ctx context.Context) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// session consumes on ch until the channel is lost, the broker cancels
// the subscription, or the consumer stops.
func (cs *Consumer) session(ctx context.Context, ch *amqp.Channel, sem chan struct{}, handlers *sync.WaitGroup) {
	var mine sync.WaitGroup // handlers of this channel
	defer closeChannel(ch)
	if err := await(ctx, func() error { return ch.Qos(cs.opts.Prefetch, 0, false) }); err != nil {
		cs.lastErr.Store(&err)
		cs.log.Warn("cannot set the prefetch; retrying", "err", err)
		return
	}
	tag := cs.opts.Tag + "-" + NewMessageID()[:8]
	var deliveries <-chan amqp.Delivery
	err := await(ctx, func() error {
		d, err := ch.Consume(cs.queue, tag, false, false, false, false, nil)
		deliveries = d
		return err
	})
	if err != nil {
		cs.lastErr.Store(&err)
		cs.log.Warn("cannot subscribe; retrying", "err", err)
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			cs.c.recoverQueue(cs.queue)
		}
		return
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	cs.readyOnce.Do(func() { close(cs.ready) })
	cs.log.Info("subscribed", "tag", tag, "prefetch", cs.opts.Prefetch)
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				if ch.IsClosed() {
					cs.log.Warn("consumer channel lost; resubscribing", "err", <-closed)
					return
				}
				// The broker cancelled the subscription (queue deleted, or
				// its node gone): let this channel's handlers ack first.
				cs.log.Warn("the broker cancelled the subscription; resubscribing")
				waitOr(&mine, cs.force)
				return
			}
			select {
			case sem <- struct{}{}:
			case <-cs.stopping:
				cs.stop(ch, tag, &mine)
				return
			}
			cs.stats.delivered.Add(1)
			mine.Add(1)
			handlers.Add(1)
			go func() {
				defer func() { <-sem; mine.Done(); handlers.Done() }()
				cs.handle(d)
			}()
		case <-cs.stopping:
			cs.stop(ch, tag, &mine)
			return
		}
	}
}

// stop cancels the subscription so that the broker sends nothing more,
// and waits for the handlers of this channel. Messages sent ahead and not
// handled stay unacked: closing the channel requeues them.
func (cs *Consumer) stop(ch *amqp.Channel, tag string, mine *sync.WaitGroup) {
	cancelled := make(chan struct{})
	go func() {
		if err := ch.Cancel(tag, false); err != nil {
			cs.log.Debug("cancel subscription", "err", err)
		}
		close(cancelled)
	}()
	select {
	case <-cancelled:
	case <-time.After(closeTimeout):
		// A blocked connection: the broker may deliver more, which stay
		// unacked and go back to the queue when the channel closes.
	}
	waitOr(mine, cs.force)
	cs.log.Info("consumer stopped; unprocessed prefetched messages go back to the queue")
}

// handle runs the handler and settles the delivery.
func (cs *Consumer) handle(d amqp.Delivery) {
	err := cs.call(d)
	if err == nil {
		if aerr := d.Ack(false); aerr != nil {
			cs.stats.ackErrors.Add(1)
			cs.log.Info("ack lost with its channel; the broker delivers the message again", "message_id", d.MessageId, "err", aerr)
			return
		}
		cs.stats.acked.Add(1)
		return
	}
	cs.stats.failed.Add(1)
	cs.failed(d, err)
}

// call runs the handler on a copy of d that cannot be settled by hand.
func (cs *Consumer) call(d amqp.Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
			cs.log.Error("handler panicked", "message_id", d.MessageId, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	hd := d
	hd.Acknowledger = nil
	return cs.h.HandleDelivery(cs.force, hd)
}
