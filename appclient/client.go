package appclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// closeTimeout bounds closing a channel or a connection: during an alarm
// the broker does not read from a blocked connection, so a close handshake
// could wait for ever.
const closeTimeout = 5 * time.Second

// closeChannel closes ch, waiting at most closeTimeout; a close that takes
// longer completes in the background, or when the connection closes.
func closeChannel(ch *amqp.Channel) {
	done := make(chan struct{})
	go func() { _ = ch.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeTimeout):
	}
}

// await runs an AMQP call that may go unanswered for as long as an alarm
// lasts (the broker stops reading from a blocked connection, so even
// channel.open waits), and returns when the call does or ctx ends. In the
// latter case the call completes in the background.
func await(ctx context.Context, call func() error) error {
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// openChannel opens a channel on conn, or gives up when ctx ends (a
// channel that opens later is closed at once).
func openChannel(ctx context.Context, conn *amqp.Connection) (*amqp.Channel, error) {
	type result struct {
		ch  *amqp.Channel
		err error
	}
	done := make(chan result, 1)
	go func() {
		ch, err := conn.Channel()
		done <- result{ch, err}
	}()
	select {
	case r := <-done:
		return r.ch, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.ch != nil {
				closeChannel(r.ch)
			}
		}()
		return nil, ctx.Err()
	}
}

// ErrClosed is returned by calls on a Client, Publisher or Consumer that
// has been closed.
var ErrClosed = errors.New("appclient: closed")

// Client is one AMQP connection that heals itself: when the connection is
// lost it dials the configured URLs again (rotating, with backoff),
// declares the topology recorded through Declare again, and hands the new
// connection to its publishers and consumers.
//
// A Client is safe for concurrent use. Use one Client for publishing and
// another for consuming: during a memory or disk alarm RabbitMQ stops
// reading from connections that publish, which would also hold up the acks
// of a consumer sharing the connection.
type Client struct {
	cfg parsed
	log *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the supervisor has stopped

	mu        sync.Mutex
	conn      *amqp.Connection // nil while reconnecting
	url       int              // index of the URL conn was dialled from
	ready     chan struct{}    // closed while conn is usable
	unblocked chan struct{}    // nil, or open while the broker blocks conn
	closed    bool

	topoMu     sync.Mutex // serialises Declare with the redeclaration after a reconnect
	topology   []Declaration
	queueTypes map[string]QueueType
}

// Dial connects to the first URL of cfg that answers and returns a Client
// that keeps the connection up until Close. It retries with backoff until
// a connection is up or ctx ends; a refused login or a missing vhost fails
// at once, since retrying would not help.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	p, err := cfg.parse()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: p, log: p.Logger.With("component", "appclient", "connection", p.Name),
		done: make(chan struct{}), ready: make(chan struct{}), queueTypes: map[string]QueueType{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	conn, idx, err := c.connect(ctx, 0, true)
	if err != nil {
		c.cancel()
		return nil, err
	}
	closed, blocked := c.adopt(conn, idx)
	go c.supervise(conn, idx, closed, blocked)
	return c, nil
}

// Close closes the connection and stops reconnecting. Publishers and
// consumers of the Client stop too; close them first (Publisher.Close,
// Consumer.Shutdown) to let in-flight work finish.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	<-c.done
	return nil
}

// connect dials the URLs in turn, starting at index start, waiting between
// attempts as the backoff says, and declares the recorded topology on the
// new connection. first marks the initial Dial, where errors that retrying
// cannot fix are returned at once.
func (c *Client) connect(ctx context.Context, start int, first bool) (*amqp.Connection, int, error) {
	waits := c.cfg.Backoff.Waits()
	n := len(c.cfg.uris)
	for attempt := 0; ; attempt++ {
		i := (start + attempt) % n
		u := c.cfg.uris[i]
		conn, err := c.dialOne(ctx, u)
		if err == nil {
			if err = c.redeclare(conn); err == nil {
				c.log.Info("connected", "url", redact(u), "attempt", attempt+1)
				return conn, i, nil
			}
			_ = conn.Close()
		}
		if first && permanent(err) {
			return nil, 0, fmt.Errorf("appclient: connect to %s: %w", redact(u), explain(err))
		}
		wait := waits.Next()
		c.log.Warn("connection attempt failed", "url", redact(u), "attempt", attempt+1, "retry_in", wait.Round(time.Millisecond), "err", explain(err))
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("appclient: no connection to %s after %d attempts (last error: %v): %w",
				c.urlList(), attempt+1, explain(err), ctx.Err())
		case <-c.ctx.Done():
			return nil, 0, ErrClosed
		case <-time.After(wait):
		}
	}
}

func (c *Client) urlList() string {
	s := ""
	for i, u := range c.cfg.uris {
		if i > 0 {
			s += ", "
		}
		s += redact(u)
	}
	return s
}

func (c *Client) dialOne(ctx context.Context, u amqp.URI) (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	if c.cfg.Name != "" {
		props.SetClientConnectionName(c.cfg.Name)
	}
	cfg := amqp.Config{
		Heartbeat:  c.cfg.Heartbeat,
		Locale:     "en_US",
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: c.cfg.DialTimeout}
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bounds the TLS and AMQP handshakes; amqp091 clears it once open.
			return conn, conn.SetDeadline(time.Now().Add(c.cfg.DialTimeout))
		},
	}
	if u.Scheme == "amqps" && c.cfg.TLS != nil {
		// amqp091 writes the URL's host into ServerName: give each dial its own copy.
		cfg.TLSClientConfig = c.cfg.TLS.Clone()
	}
	return amqp.DialConfig(u.String(), cfg)
}

// permanent reports errors that a new attempt with the same settings will
// meet again: a refused login, a vhost that is missing or not permitted.
func permanent(err error) bool {
	if errors.Is(err, amqp.ErrCredentials) || errors.Is(err, amqp.ErrVhost) {
		return true
	}
	var ae *amqp.Error
	return errors.As(err, &ae) && (ae.Code == amqp.AccessRefused || ae.Code == amqp.NotAllowed)
}

func explain(err error) error {
	switch {
	case errors.Is(err, amqp.ErrCredentials):
		return fmt.Errorf("%w (check the user name and password)", err)
	case errors.Is(err, amqp.ErrVhost):
		return fmt.Errorf("%w (the vhost does not exist or the user has no access to it)", err)
	}
	return err
}

// adopt makes conn the client's connection, with listeners for its close
// and for connection.blocked. amqp091 drops a notification its listener
// does not take within 5s; supervise never blocks that long.
func (c *Client) adopt(conn *amqp.Connection, idx int) (chan *amqp.Error, chan amqp.Blocking) {
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 8))
	c.setConn(conn, idx)
	return closed, blocked
}

// supervise owns the connection: it tracks connection.blocked, and when
// the connection is lost it reconnects, starting with the next URL.
func (c *Client) supervise(conn *amqp.Connection, idx int, closed chan *amqp.Error, blocked chan amqp.Blocking) {
	defer close(c.done)
	for {
		var lost *amqp.Error
	watch:
		for {
			select {
			case b, ok := <-blocked:
				if !ok {
					blocked = nil
					continue
				}
				c.setBlocked(b)
			case lost = <-closed:
				break watch
			case <-c.ctx.Done():
				c.clearConn()
				// Bounded: a blocked connection is not read by the broker.
				_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
				return
			}
		}
		c.clearConn()
		if lost != nil {
			c.log.Warn("connection lost, reconnecting", "url", redact(c.cfg.uris[idx]), "err", lost)
		} else {
			c.log.Warn("connection closed, reconnecting", "url", redact(c.cfg.uris[idx]))
		}
		var err error
		conn, idx, err = c.connect(c.ctx, idx+1, false)
		if err != nil {
			return // closed
		}
		closed, blocked = c.adopt(conn, idx)
	}
}

func (c *Client) setConn(conn *amqp.Connection, idx int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn, c.url = conn, idx
	close(c.ready)
}

func (c *Client) clearConn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = nil
	c.ready = make(chan struct{})
	if c.unblocked != nil {
		close(c.unblocked)
		c.unblocked = nil
	}
}

func (c *Client) setBlocked(b amqp.Blocking) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case b.Active && c.unblocked == nil:
		c.unblocked = make(chan struct{})
		c.log.Warn("the broker blocked the connection: publishing waits until it is unblocked", "reason", b.Reason)
	case !b.Active && c.unblocked != nil:
		close(c.unblocked)
		c.unblocked = nil
		c.log.Info("the broker unblocked the connection")
	}
}

// Blocked reports whether the broker has blocked the connection
// (connection.blocked, sent during a memory or disk alarm), and returns a
// channel closed when it no longer is.
func (c *Client) Blocked() (bool, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unblocked == nil {
		return false, nil
	}
	return true, c.unblocked
}

// Connected reports whether the client has a connection right now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// connection waits for a usable connection.
func (c *Client) connection(ctx context.Context) (*amqp.Connection, error) {
	for {
		c.mu.Lock()
		conn, ready, closed := c.conn, c.ready, c.closed
		c.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
		if conn != nil {
			// The connection we saw is closed but the supervisor has not
			// noticed yet: give it a moment.
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
}

// Channel opens a channel on the current connection, waiting for one while
// the client reconnects. The channel does not survive a reconnect; it is
// there for what the package does not cover (e.g. a passive declare).
func (c *Client) Channel(ctx context.Context) (*amqp.Channel, error) {
	for {
		conn, err := c.connection(ctx)
		if err != nil {
			return nil, err
		}
		ch, err := openChannel(ctx, conn)
		if err == nil {
			return ch, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !conn.IsClosed() {
			return nil, fmt.Errorf("appclient: open channel: %w", err)
		}
	}
}
