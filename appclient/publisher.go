package appclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// PublisherOptions tune a Publisher. The zero value is the safe default.
type PublisherOptions struct {
	// MaxInFlight bounds the messages published and not yet confirmed
	// (default 256). Publish calls beyond it wait.
	MaxInFlight int
	// NackRetries is how many times a message the broker refuses
	// (basic.nack) is published again, each time on a new channel after a
	// backoff wait, before Publish returns ErrNacked (default 5; negative
	// for none). Nacks are mostly passing: a quorum queue between leaders,
	// a queue at its length limit with overflow reject-publish.
	NackRetries int
	// AllowUnroutable publishes without the mandatory flag: the broker
	// then drops a message no queue is bound for, and Publish returns nil.
	// By default such a message is an error (ErrUnroutable).
	AllowUnroutable bool
}

// Defaults of PublisherOptions.
const (
	DefaultMaxInFlight = 256
	DefaultNackRetries = 5
)

// Publisher publishes with publisher confirms on a channel of its own, and
// keeps every message until the broker confirms it: when the channel or the
// connection is lost, the unconfirmed messages are published again on the
// next one, in their order. Delivery is therefore at least once: a message
// the broker had stored when the connection broke arrives twice, which
// consumers detect by its MessageId.
//
// A Publisher is safe for concurrent use.
type Publisher struct {
	c    *Client
	log  *slog.Logger
	opts PublisherOptions

	reqs      chan *pending
	closing   chan struct{}
	closeOnce sync.Once
	ctx       context.Context // ends when Close gives up waiting, or the client closes
	cancel    context.CancelFunc
	done      chan struct{}

	stats struct{ published, confirmed, republished, returned, nacked atomic.Int64 }
}

// PublisherStats counts a publisher's messages since it started.
type PublisherStats struct {
	Published   int64 // basic.publish sent, including republications
	Confirmed   int64 // acknowledged by the broker (Publish returned nil or ErrUnroutable)
	Republished int64 // sent again after a lost channel or connection
	Returned    int64 // returned unroutable
	Nacked      int64 // refused by the broker (each refusal, retried or not)
}

// NewPublisher starts a publisher on the client's connection; it opens
// its channel in the background.
func (c *Client) NewPublisher(opts PublisherOptions) *Publisher {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	switch {
	case opts.NackRetries == 0:
		opts.NackRetries = DefaultNackRetries
	case opts.NackRetries < 0:
		opts.NackRetries = 0
	}
	p := &Publisher{c: c, log: c.log.With("role", "publisher"), opts: opts,
		reqs: make(chan *pending), closing: make(chan struct{}), done: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(c.ctx)
	go p.run()
	return p
}

// Message states, so that a Publish whose context ends can tell whether its
// message went out.
const (
	queued int32 = iota
	sent
	abandoned
)

type pending struct {
	ctx           context.Context
	exchange, key string
	mandatory     bool
	msg           amqp.Publishing
	result        chan error // buffered: the loop never waits for the caller
	state         atomic.Int32
	returned      *amqp.Return
	softFails     int
	nacks         int
}

// Publish publishes a message and waits until the broker has confirmed it.
// It returns nil only then. Meanwhile it rides out lost connections (the
// message is published again on the next one) and blocked connections
// (memory or disk alarm: it waits until the broker unblocks). A message
// without a MessageId gets a random one, which consumers need to drop the
// duplicates that at-least-once delivery brings.
//
// The error is a *ReturnedError (errors.Is ErrUnroutable) when no queue
// took the message, ErrNacked when the broker kept refusing it (see
// PublisherOptions.NackRetries), and, when ctx
// ends first, ctx's error: joined with ErrUnconfirmed when the message had
// gone out (it may be in a queue), alone when it had not.
func (p *Publisher) Publish(ctx context.Context, exchange, key string, msg amqp.Publishing) error {
	if msg.MessageId == "" {
		msg.MessageId = NewMessageID()
	}
	if err := msg.Headers.Validate(); err != nil {
		return fmt.Errorf("appclient: message %s not published: its headers: %w", msg.MessageId, err)
	}
	m := &pending{ctx: ctx, exchange: exchange, key: key, mandatory: !p.opts.AllowUnroutable, msg: msg, result: make(chan error, 1)}
	select {
	case p.reqs <- m:
	case <-ctx.Done():
		return fmt.Errorf("appclient: message %s not published: %w", msg.MessageId, ctx.Err())
	case <-p.closing:
		return fmt.Errorf("appclient: message %s not published: %w", msg.MessageId, ErrClosed)
	case <-p.done:
		return fmt.Errorf("appclient: message %s not published: %w", msg.MessageId, ErrClosed)
	}
	select {
	case err := <-m.result:
		return err
	case <-ctx.Done():
		if m.state.CompareAndSwap(queued, abandoned) {
			return fmt.Errorf("appclient: message %s not published: %w", msg.MessageId, ctx.Err())
		}
		return fmt.Errorf("appclient: message %s: %w: %w", msg.MessageId, ErrUnconfirmed, ctx.Err())
	}
}

// Close stops taking messages and waits until those already taken are
// confirmed (or failed), or ctx ends; then messages still unconfirmed fail
// with ErrClosed.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() { close(p.closing) })
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.cancel()
		<-p.done
		return fmt.Errorf("appclient: publisher closed before every message was confirmed: %w", ctx.Err())
	}
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{
		Published: p.stats.published.Load(), Confirmed: p.stats.confirmed.Load(), Republished: p.stats.republished.Load(),
		Returned: p.stats.returned.Load(), Nacked: p.stats.nacked.Load(),
	}
}

// NewMessageID returns a random message id (32 hex digits).
func NewMessageID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (p *Publisher) isClosing() bool {
	select {
	case <-p.closing:
		return true
	default:
		return false
	}
}

// run opens a channel, publishes on it until it is lost, and starts over
// with the messages that were not confirmed.
func (p *Publisher) run() {
	defer close(p.done)
	var queue []*pending
	fail := func(err error) {
		for _, m := range queue {
			m.result <- fmt.Errorf("appclient: message %s not confirmed: %w", m.msg.MessageId, err)
		}
		queue = nil
	}
	waits := p.c.cfg.Backoff.Waits()
	for {
		if len(queue) == 0 && p.isClosing() {
			return
		}
		ch, err := p.channel(len(queue) == 0)
		switch {
		case err == nil:
		case p.ctx.Err() != nil:
			fail(ErrClosed)
			return
		case len(queue) == 0 && p.isClosing():
			return
		default:
			p.log.Warn("cannot open a channel; retrying", "err", err)
			select {
			case <-time.After(waits.Next()):
			case <-p.ctx.Done():
			}
			continue
		}
		var finished bool
		start := time.Now()
		queue, finished = p.session(ch, queue)
		if finished {
			fail(ErrClosed)
			return
		}
		if time.Since(start) > 10*time.Second {
			waits.Reset()
		}
		select {
		case <-time.After(waits.Next()):
		case <-p.ctx.Done():
		}
	}
}

// channel waits for a channel; with idle set, Close ends the wait.
func (p *Publisher) channel(idle bool) (*amqp.Channel, error) {
	ctx := p.ctx
	if idle {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(p.ctx)
		defer cancel()
		go func() {
			select {
			case <-p.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return p.c.Channel(ctx)
}

// session publishes on ch until it is lost, and returns the messages to
// publish again, in order. finished is true when the publisher stops.
func (p *Publisher) session(ch *amqp.Channel, queue []*pending) (_ []*pending, finished bool) {
	defer closeChannel(ch)
	if err := await(p.ctx, func() error { return ch.Confirm(false) }); err != nil {
		if p.ctx.Err() != nil {
			return queue, true
		}
		p.log.Warn("cannot put the channel in confirm mode; retrying", "err", err)
		return queue, false
	}
	// Sized so that amqp091 never waits on them (it drops a notification
	// after 5s): there are never more than MaxInFlight outstanding.
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, p.opts.MaxInFlight+1))
	returns := ch.NotifyReturn(make(chan amqp.Return, p.opts.MaxInFlight+1))
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	inflight := map[uint64]*pending{}
	closing := p.closing
	if p.isClosing() {
		closing = nil
	}

	takeReturn := func(r amqp.Return) {
		var best uint64
		for seq, m := range inflight {
			if m.returned == nil && m.msg.MessageId == r.MessageId && (best == 0 || seq < best) {
				best = seq
			}
		}
		if best != 0 {
			inflight[best].returned = &r
		}
	}
	drainReturns := func() {
		for {
			select {
			case r, ok := <-returns:
				if !ok {
					returns = nil
					return
				}
				takeReturn(r)
			default:
				return
			}
		}
	}
	nacked := false // a message awaits publishing again after a nack
	settle := func(cf amqp.Confirmation) {
		m, ok := inflight[cf.DeliveryTag]
		if !ok {
			return
		}
		if !cf.Ack {
			p.stats.nacked.Add(1)
		}
		if !cf.Ack && m.nacks < p.opts.NackRetries {
			// Stays in flight: published again on a new channel.
			m.nacks++
			nacked = true
			return
		}
		delete(inflight, cf.DeliveryTag)
		switch {
		case !cf.Ack:
			m.result <- fmt.Errorf("appclient: message %s to exchange %q, refused %d times: %w", m.msg.MessageId, m.exchange, m.nacks+1, ErrNacked)
		case m.returned != nil:
			p.stats.confirmed.Add(1)
			p.stats.returned.Add(1)
			m.result <- &ReturnedError{Exchange: m.exchange, RoutingKey: m.key, MessageID: m.msg.MessageId, Code: m.returned.ReplyCode, Text: m.returned.ReplyText}
		default:
			p.stats.confirmed.Add(1)
			m.result <- nil
		}
	}

	for {
		// Publish what is waiting, unless the broker blocks the connection.
		for len(queue) > 0 && len(inflight) < p.opts.MaxInFlight {
			if blocked, _ := p.c.Blocked(); blocked {
				break
			}
			m := queue[0]
			again := m.state.Load() == sent
			if !again && !m.state.CompareAndSwap(queued, sent) || again && m.ctx.Err() != nil {
				// The caller gave up and was told so.
				queue = queue[1:]
				continue
			}
			seq := ch.GetNextPublishSeqNo()
			if err := ch.Publish(m.exchange, m.key, m.mandatory, false, m.msg); err != nil {
				// The message was checked in Publish: the channel or the
				// socket is gone. This message and the unconfirmed ones go
				// out again on the next channel.
				return p.requeue(&amqp.Error{Code: amqp.FrameError, Reason: err.Error()}, false, inflight, queue), false
			}
			queue = queue[1:]
			inflight[seq] = m
			p.stats.published.Add(1)
			if again {
				p.stats.republished.Add(1)
			}
		}
		if closing == nil && len(queue) == 0 && len(inflight) == 0 {
			return nil, true
		}
		if nacked {
			// On RabbitMQ 3.10 a channel that published to a quorum queue
			// whose leader died keeps nacking after the queue has a new
			// leader (seen in the lab): publish again on a new channel.
			return p.requeue(&amqp.Error{Reason: "the broker nacked a message"}, false, inflight, queue), false
		}
		var unblocked <-chan struct{}
		if blocked, ch := p.c.Blocked(); blocked && len(queue) > 0 {
			unblocked = ch
		}
		select {
		case m := <-p.reqs:
			queue = append(queue, m)
		case cf, ok := <-confirms:
			if !ok {
				confirms = nil
				continue
			}
			drainReturns()
			settle(cf)
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			takeReturn(r)
		case <-unblocked:
		case <-closing:
			closing = nil
		case <-p.ctx.Done():
			for _, m := range inflight {
				queue = append(queue, m)
			}
			return queue, true
		case err := <-closed:
			// Confirmations that arrived before the close still count.
			for confirms != nil {
				select {
				case cf, ok := <-confirms:
					if !ok {
						confirms = nil
						break
					}
					drainReturns()
					settle(cf)
				default:
					confirms = nil
				}
			}
			return p.requeue(err, err != nil && channelLevel(err.Code), inflight, queue), false
		}
	}
}

var noExchange = regexp.MustCompile(`no exchange '(.*)' in vhost`)

// requeue puts the unconfirmed messages of a lost channel back in front of
// the queue, in publishing order. When the broker closed only the channel,
// because of a message (publishing to a missing exchange, 404; or no
// write permission, 403), the messages it concerns fail instead of looping.
func (p *Publisher) requeue(cause *amqp.Error, channelOnly bool, inflight map[uint64]*pending, queue []*pending) []*pending {
	seqs := make([]uint64, 0, len(inflight))
	for seq := range inflight {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	var missing string
	if channelOnly && cause.Code == amqp.NotFound {
		if m := noExchange.FindStringSubmatch(cause.Reason); m != nil {
			missing = m[1]
		}
	}
	again := make([]*pending, 0, len(seqs)+len(queue))
	failed := 0
	for _, seq := range seqs {
		m := inflight[seq]
		m.returned = nil
		if channelOnly {
			m.softFails++
			if cause.Code == amqp.AccessRefused || missing != "" && m.exchange == missing || missing == "" && m.softFails >= 3 {
				m.result <- fmt.Errorf("appclient: message %s to exchange %q: the broker closed the channel: %w", m.msg.MessageId, m.exchange, cause)
				failed++
				continue
			}
		}
		again = append(again, m)
	}
	if channelOnly && missing != "" {
		// Messages not yet sent to the missing exchange would close the next channel too.
		for _, m := range queue {
			if m.exchange == missing && m.state.CompareAndSwap(queued, sent) {
				m.result <- fmt.Errorf("appclient: message %s: exchange %q does not exist: %w", m.msg.MessageId, missing, cause)
				failed++
				continue
			}
			again = append(again, m)
		}
	} else {
		again = append(again, queue...)
	}
	p.log.Warn("publisher channel lost; publishing the unconfirmed messages again", "unconfirmed", len(seqs)-failed, "failed", failed, "err", cause)
	return again
}

// channelLevel reports AMQP reply codes with which the broker closes a
// channel and leaves the connection up. A lost connection closes its
// channels with the connection's own code.
func channelLevel(code int) bool {
	switch code {
	case amqp.ContentTooLarge, amqp.NoConsumers, amqp.AccessRefused, amqp.NotFound, amqp.ResourceLocked, amqp.PreconditionFailed:
		return true
	}
	return false
}
