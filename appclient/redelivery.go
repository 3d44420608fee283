package appclient

import (
	"context"
	"errors"

	amqp "github.com/rabbitmq/amqp091-go"
)

// AttemptsHeader counts, on queues where the broker keeps no delivery
// count (classic queues), how many times handlers have failed on a message.
// The consumer sets it when it publishes a failed message again.
const AttemptsHeader = "x-appclient-attempts"

// deliveryCountHeader is set by quorum queues on redelivered messages: how
// many times the message was returned to the queue.
const deliveryCountHeader = "x-delivery-count"

// Attempt returns which attempt at d this is, from 1: one more than the
// failures recorded on the message (the quorum queue's x-delivery-count
// plus the consumer's own x-appclient-attempts).
func Attempt(d amqp.Delivery) int {
	return 1 + headerInt(d.Headers, deliveryCountHeader) + headerInt(d.Headers, AttemptsHeader)
}

func headerInt(h amqp.Table, key string) int {
	switch v := h[key].(type) {
	case int:
		return v
	case int8:
		return int(v)
	case int16:
		return int(v)
	case int32:
		return int(v)
	case int64:
		return int(v)
	case uint8:
		return int(v)
	case uint16:
		return int(v)
	case uint32:
		return int(v)
	}
	return 0
}

// failed settles a delivery whose handler failed.
//
//   - Permanent errors, and the last allowed attempt: reject without
//     requeue, so that the queue's dead-letter exchange takes the message.
//   - Quorum queues: reject with requeue. The queue counts the return in
//     x-delivery-count (and dead-letters by itself past x-delivery-limit).
//     basic.reject, not basic.nack: from RabbitMQ 4.3 only a reject counts.
//   - Classic queues keep no count: publish a copy with x-appclient-attempts
//     one higher to the queue (default exchange), wait for its confirm,
//     then ack the original. When the copy cannot be published, reject with
//     requeue: the attempt is then not counted, and the message comes back.
func (cs *Consumer) failed(d amqp.Delivery, herr error) {
	attempt := Attempt(d)
	log := cs.log.With("message_id", d.MessageId, "attempt", attempt, "max_attempts", cs.opts.MaxAttempts)
	if IsPermanent(herr) || attempt >= cs.opts.MaxAttempts {
		if err := d.Reject(false); err != nil {
			cs.stats.ackErrors.Add(1)
			log.Info("reject lost with its channel; the broker delivers the message again", "err", err)
			return
		}
		cs.stats.deadLettered.Add(1)
		log.Warn("giving up on the message: rejected to the queue's dead-letter exchange (dropped if it has none)", "err", herr)
		return
	}
	if cs.typ == Quorum {
		if err := d.Reject(true); err != nil {
			cs.stats.ackErrors.Add(1)
			log.Info("requeue lost with its channel; the broker delivers the message again", "err", err)
			return
		}
		cs.stats.requeued.Add(1)
		log.Info("handler failed; message requeued", "err", herr)
		return
	}
	msg := publishingOf(d, cs.c.user())
	msg.Headers[AttemptsHeader] = int32(headerInt(d.Headers, AttemptsHeader) + 1)
	pub, err := cs.republisher()
	if err == nil {
		err = pub.Publish(cs.force, "", cs.queue, msg)
	}
	if err != nil {
		log.Warn("handler failed and the message could not be published again with its attempt count; requeued uncounted", "err", herr, "publish_err", err)
		if rerr := d.Reject(true); rerr == nil {
			cs.stats.requeued.Add(1)
		} else {
			cs.stats.ackErrors.Add(1)
		}
		return
	}
	cs.stats.republished.Add(1)
	if err := d.Ack(false); err != nil {
		// The copy is in the queue and the original comes back too.
		cs.stats.ackErrors.Add(1)
		log.Info("ack lost with its channel; the message will be delivered twice", "err", err)
		return
	}
	log.Info("handler failed; message published again to the queue's tail", "err", herr)
}

// republisher returns the consumer's publisher, started on first use.
func (cs *Consumer) republisher() (*Publisher, error) {
	cs.pubMu.Lock()
	defer cs.pubMu.Unlock()
	if cs.pubEnd {
		return nil, ErrClosed
	}
	if cs.pub == nil {
		cs.pub = cs.c.NewPublisher(PublisherOptions{})
	}
	return cs.pub, nil
}

// publishingOf copies a delivery into a message to publish again. The
// user-id property survives only when it names the consumer's own user:
// RabbitMQ refuses a message whose user-id is another user's.
func publishingOf(d amqp.Delivery, user string) amqp.Publishing {
	h := amqp.Table{}
	for k, v := range d.Headers {
		if k != deliveryCountHeader {
			h[k] = v
		}
	}
	p := amqp.Publishing{
		Headers: h, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding, DeliveryMode: d.DeliveryMode,
		Priority: d.Priority, CorrelationId: d.CorrelationId, ReplyTo: d.ReplyTo, Expiration: d.Expiration,
		MessageId: d.MessageId, Timestamp: d.Timestamp, Type: d.Type, AppId: d.AppId, Body: d.Body,
	}
	if d.UserId == user {
		p.UserId = d.UserId
	}
	return p
}

// user is the user name of the current URL.
func (c *Client) user() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.uris[c.url].Username
}

// recoverQueue declares again a queue recorded through Declare, and its
// bindings, after a subscription found it missing (deleted while the
// connection stayed up).
func (c *Client) recoverQueue(name string) {
	c.topoMu.Lock()
	var queue, bindings []Declaration
	exchanges := map[string]bool{}
	for _, d := range c.topology {
		switch d := d.(type) {
		case Queue:
			if d.Name == name {
				queue = append(queue, d)
			}
		case Binding:
			if d.Queue == name {
				bindings = append(bindings, d)
				exchanges[d.Exchange] = true
			}
		}
	}
	var ds []Declaration
	for _, d := range c.topology {
		if e, ok := d.(Exchange); ok && exchanges[e.Name] {
			ds = append(ds, e)
		}
	}
	ds = append(append(ds, queue...), bindings...)
	c.topoMu.Unlock()
	if len(queue) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.DialTimeout)
	defer cancel()
	conn, err := c.connection(ctx)
	if err != nil {
		return
	}
	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	if err := declareOn(ctx, conn, ds); err != nil && !errors.Is(err, amqp.ErrClosed) {
		c.log.Error("queue missing and cannot be declared again", "queue", name, "err", err)
		return
	}
	c.log.Warn("queue was missing: declared it again", "queue", name, "declarations", len(ds))
}
