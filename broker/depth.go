package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Depths reads current queue depths over AMQP. A passive queue.declare
// answers with the queue's ready-message and consumer counts as they are
// now, unlike the HTTP API whose counts lag by the statistics interval.
// It keeps one connection per vhost and fails over to the endpoint's next
// node when a node goes away.
//
// For a quorum queue the answer comes from a 250ms call to its leader and
// is 0 when that call fails (rabbit_quorum_queue:stat/2): treat a quorum
// queue's 0 as "at least 0".
type Depths struct {
	ep    Endpoint
	mu    sync.Mutex
	conns map[string]*amqp.Connection
	next  int // node to dial next, rotated on failure
}

// NewDepths returns a depth reader for ep; Close it when done.
func NewDepths(ep Endpoint) *Depths {
	return &Depths{ep: ep, conns: map[string]*amqp.Connection{}}
}

// ErrNoQueue is returned for a queue that does not exist.
var ErrNoQueue = errors.New("queue does not exist")

// Depth returns the ready messages and consumers of a queue, as the broker
// counts them now.
func (d *Depths) Depth(ctx context.Context, vhost, queue string) (messages, consumers int, err error) {
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
			return 0, 0, fmt.Errorf("%s queue %q in vhost %q: %w", d.ep.Name, queue, vhost, ErrNoQueue)
		}
		d.drop(vhost, conn)
	}
	return 0, 0, fmt.Errorf("read depth of %s queue %q in vhost %q: %w", d.ep.Name, queue, vhost, err)
}

func (d *Depths) conn(ctx context.Context, vhost string) (*amqp.Connection, error) {
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

func (d *Depths) drop(vhost string, c *amqp.Connection) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = c.Close()
	if d.conns[vhost] == c {
		delete(d.conns, vhost)
	}
	d.next++
}

// Close closes the reader's connections.
func (d *Depths) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = map[string]*amqp.Connection{}
}
