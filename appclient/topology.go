package appclient

import (
	"context"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Declaration is an exchange, queue or binding that a Client declares now
// and again after every reconnect (Client.Declare).
type Declaration interface {
	declare(ch *amqp.Channel) error
	validate() error
	String() string
}

// QueueType is a queue's x-queue-type.
type QueueType string

// Queue types. The zero value sends no x-queue-type: the broker's default
// applies (classic on RabbitMQ 3.x unless the vhost sets another), and a
// queue that exists already is accepted whatever its type.
const (
	Quorum  QueueType = "quorum"
	Classic QueueType = "classic"
)

// Exchange is a durable exchange.
type Exchange struct {
	Name       string
	Kind       string // direct (the default), fanout, topic or headers
	AutoDelete bool
	Internal   bool
	Args       amqp.Table
}

func (e Exchange) kind() string {
	if e.Kind == "" {
		return amqp.ExchangeDirect
	}
	return e.Kind
}

func (e Exchange) validate() error {
	if e.Name == "" || len(e.Name) > 255 {
		return fmt.Errorf("appclient: exchange name %q: want 1 to 255 bytes (the default exchange needs no declaration)", e.Name)
	}
	return nil
}

func (e Exchange) declare(ch *amqp.Channel) error {
	return ch.ExchangeDeclare(e.Name, e.kind(), true, e.AutoDelete, e.Internal, false, e.Args)
}

func (e Exchange) String() string { return fmt.Sprintf("exchange %q (%s)", e.Name, e.kind()) }

// Queue is a queue. It is durable unless Exclusive.
type Queue struct {
	Name string
	// Type is quorum, classic, or empty for the broker's default.
	Type QueueType
	// DeadLetterExchange receives messages the consumer gives up on
	// (x-dead-letter-exchange); without one the broker discards them.
	DeadLetterExchange string
	// DeadLetterRoutingKey replaces the routing key of dead-lettered
	// messages (x-dead-letter-routing-key).
	DeadLetterRoutingKey string
	// DeliveryLimit makes a quorum queue dead-letter a message once it
	// has been returned this many times (x-delivery-limit). It is the
	// broker's own bound on redeliveries, which also holds when a consumer
	// crashes on a message before its handler can fail; 0 leaves none.
	DeliveryLimit int
	// Exclusive and AutoDelete are for classic queues only. An exclusive
	// queue lives as long as the connection; the client declares it again
	// on the new connection.
	Exclusive, AutoDelete bool
	// Passive only checks that the queue exists (queue.declare passive):
	// for queues that someone else owns, e.g. created by `warren migrate`
	// with settings the service should not restate.
	Passive bool
	// Args are further x-arguments.
	Args amqp.Table
}

func (q Queue) validate() error {
	if q.Name == "" || len(q.Name) > 255 {
		return fmt.Errorf("appclient: queue name %q: want 1 to 255 bytes; server-named queues cannot be declared again after a reconnect under the same name", q.Name)
	}
	if q.Type != "" && q.Type != Quorum && q.Type != Classic {
		return fmt.Errorf("appclient: queue %q: type %q: want quorum, classic or empty", q.Name, q.Type)
	}
	if q.Type == Quorum && (q.Exclusive || q.AutoDelete) {
		return fmt.Errorf("appclient: queue %q: a quorum queue cannot be exclusive or auto-delete", q.Name)
	}
	if q.DeliveryLimit < 0 {
		return fmt.Errorf("appclient: queue %q: negative delivery limit %d", q.Name, q.DeliveryLimit)
	}
	if q.DeliveryLimit > 0 && q.Type != Quorum {
		return fmt.Errorf("appclient: queue %q: a delivery limit needs a quorum queue (classic queues keep no delivery count; the Consumer counts attempts itself there)", q.Name)
	}
	return nil
}

func (q Queue) args() amqp.Table {
	args := amqp.Table{}
	for k, v := range q.Args {
		args[k] = v
	}
	if q.Type != "" {
		args[amqp.QueueTypeArg] = string(q.Type)
	}
	if q.DeadLetterExchange != "" {
		args["x-dead-letter-exchange"] = q.DeadLetterExchange
	}
	if q.DeadLetterRoutingKey != "" {
		args["x-dead-letter-routing-key"] = q.DeadLetterRoutingKey
	}
	if q.DeliveryLimit > 0 {
		args["x-delivery-limit"] = q.DeliveryLimit
	}
	return args
}

func (q Queue) declare(ch *amqp.Channel) error {
	if q.Passive {
		_, err := ch.QueueDeclarePassive(q.Name, true, false, false, false, nil)
		return err
	}
	_, err := ch.QueueDeclare(q.Name, !q.Exclusive, q.AutoDelete, q.Exclusive, false, q.args())
	return err
}

func (q Queue) String() string {
	t := string(q.Type)
	if t == "" {
		t = "default type"
	}
	return fmt.Sprintf("queue %q (%s)", q.Name, t)
}

// Binding binds a queue to an exchange.
type Binding struct {
	Queue, Exchange, Key string
	Args                 amqp.Table
}

func (b Binding) validate() error {
	if b.Queue == "" || b.Exchange == "" {
		return fmt.Errorf("appclient: binding %q -> %q: want both a queue and an exchange", b.Exchange, b.Queue)
	}
	return nil
}

func (b Binding) declare(ch *amqp.Channel) error {
	return ch.QueueBind(b.Queue, b.Key, b.Exchange, false, b.Args)
}

func (b Binding) String() string {
	return fmt.Sprintf("binding exchange %q -> queue %q (key %q)", b.Exchange, b.Queue, b.Key)
}

// Declare declares exchanges, queues and bindings, in the order given, and
// records them: after every reconnect the client declares them again, so an
// exclusive queue, or a queue deleted while the service was cut off, is
// back before publishers and consumers resume. It waits for a connection
// while the client reconnects. A declaration the broker refuses (e.g. a
// queue that exists with other arguments, 406 PRECONDITION_FAILED) is
// returned as an error and not recorded.
func (c *Client) Declare(ctx context.Context, ds ...Declaration) error {
	for _, d := range ds {
		if err := d.validate(); err != nil {
			return err
		}
	}
	for {
		conn, err := c.connection(ctx)
		if err != nil {
			return fmt.Errorf("appclient: declare: %w", err)
		}
		c.topoMu.Lock()
		err = declareOn(ctx, conn, ds)
		if err == nil {
			c.topology = append(c.topology, ds...)
			c.mu.Lock()
			for _, d := range ds {
				if q, ok := d.(Queue); ok && q.Type != "" {
					c.queueTypes[q.Name] = q.Type
				}
			}
			c.mu.Unlock()
		}
		c.topoMu.Unlock()
		if err == nil || !conn.IsClosed() {
			return err
		}
		// The connection went away mid-way: declare again on the next one.
	}
}

// declareOn declares ds on a channel of its own and returns the first
// error, naming the declaration. It gives up when ctx ends.
func declareOn(ctx context.Context, conn *amqp.Connection, ds []Declaration) error {
	ch, err := openChannel(ctx, conn)
	if err != nil {
		return fmt.Errorf("appclient: open a channel to declare: %w", err)
	}
	defer closeChannel(ch)
	for _, d := range ds {
		if err := await(ctx, func() error { return d.declare(ch) }); err != nil {
			return fmt.Errorf("appclient: declare %s: %w", d, err)
		}
	}
	return nil
}

// redeclare declares the recorded topology on a new connection. A
// declaration the broker refuses is logged and skipped (the service may
// work without it, and refusing the connection would stop everything);
// a lost connection fails the attempt.
func (c *Client) redeclare(conn *amqp.Connection) error {
	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	if len(c.topology) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.DialTimeout)
	defer cancel()
	for _, d := range c.topology {
		err := declareOn(ctx, conn, []Declaration{d})
		if err == nil {
			continue
		}
		if conn.IsClosed() || ctx.Err() != nil {
			return err
		}
		c.log.Error("declaration refused after reconnect; continuing without it", "declaration", d.String(), "err", err)
	}
	c.log.Info("topology declared again", "declarations", len(c.topology))
	return nil
}

// queueType returns the type a queue was declared with through c, or "".
func (c *Client) queueType(name string) QueueType {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queueTypes[name]
}
