package shovel

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
)

// depths reads current queue depths over AMQP. A passive queue.declare
// answers with the queue's ready-message and consumer counts as they are
// now, unlike the HTTP API whose counts lag by the statistics interval.
// It keeps one connection per vhost and fails over to the endpoint's next
// node when a node goes away.
type depths struct {
	ep    broker.Endpoint
	mu    sync.Mutex
	conns map[string]*amqp.Connection
	next  int // node to dial next, rotated on failure
}

func newDepths(ep broker.Endpoint) *depths {
	return &depths{ep: ep, conns: map[string]*amqp.Connection{}}
}

// errNoQueue is returned for a queue that does not exist.
var errNoQueue = errors.New("queue does not exist")

// Depth returns the ready messages and consumers of a queue.
func (d *depths) Depth(ctx context.Context, vhost, queue string) (messages, consumers int, err error) {
	for attempt := 0; attempt < d.ep.Nodes()+1; attempt++ {
		var conn *amqp.Connection
		conn, err = d.conn(ctx, vhost)
		if err != nil {
			continue
		}
		var ch *amqp.Channel
		ch, err = conn.Channel()
		if err != nil {
			d.drop(vhost, conn)
			continue
		}
		var q amqp.Queue
		q, err = ch.QueueDeclarePassive(queue, false, false, false, false, nil)
		if err == nil {
			_ = ch.Close()
			return q.Messages, q.Consumers, nil
		}
		var aerr *amqp.Error
		if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
			return 0, 0, fmt.Errorf("%s queue %q in vhost %q: %w", d.ep.Name, queue, vhost, errNoQueue)
		}
		d.drop(vhost, conn)
	}
	return 0, 0, fmt.Errorf("read depth of %s queue %q in vhost %q: %w", d.ep.Name, queue, vhost, err)
}

func (d *depths) conn(ctx context.Context, vhost string) (*amqp.Connection, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.conns[vhost]; c != nil && !c.IsClosed() {
		return c, nil
	}
	c, err := d.ep.DialNode(ctx, d.next%d.ep.Nodes(), vhost)
	if err != nil {
		d.next++
		return nil, err
	}
	d.conns[vhost] = c
	return c, nil
}

func (d *depths) drop(vhost string, c *amqp.Connection) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = c.Close()
	if d.conns[vhost] == c {
		delete(d.conns, vhost)
	}
	d.next++
}

func (d *depths) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = map[string]*amqp.Connection{}
}
