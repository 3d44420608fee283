package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Round trips go through a quorum queue warren declares for the purpose in
// each vhost. Its arguments protect users' queues even from policies that
// match every queue name:
//   - x-dead-letter-exchange names an exchange that does not exist, and
//     queue arguments override a policy's dead-letter-exchange, so nothing
//     the probe queue holds can be dead-lettered into a user queue;
//   - x-expires lets the broker delete the queue if warren dies before it
//     can delete it itself.
var probeQueueArgs = amqp.Table{
	"x-queue-type":           "quorum",
	"x-dead-letter-exchange": Prefix + "nowhere",
	"x-expires":              int32(10 * time.Minute / time.Millisecond),
}

func (s *session) roundTrips(ctx context.Context) {
	for _, vhost := range s.vhosts {
		s.check(ctx, AreaRoundTrip, "round trip "+vhost, func() outcome { return s.roundTrip(ctx, vhost) })
	}
}

// conns opens one connection per target node in vhost; a node that refuses
// has a nil entry and its error in errs.
func (s *session) conns(ctx context.Context, vhost string) (conns []*amqp.Connection, errs []string) {
	conns = make([]*amqp.Connection, len(s.opts.Target.AMQP))
	for i := range conns {
		c, err := s.opts.Target.DialNode(ctx, i, vhost)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		conns[i] = c
	}
	return conns, errs
}

func closeAll(conns []*amqp.Connection) {
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

// up lists the indexes of the nodes with a connection.
func up(conns []*amqp.Connection) []int {
	var out []int
	for i, c := range conns {
		if c != nil {
			out = append(out, i)
		}
	}
	return out
}

func (s *session) roundTrip(ctx context.Context, vhost string) outcome {
	conns, errs := s.conns(ctx, vhost)
	defer closeAll(conns)
	nodes := up(conns)
	if len(nodes) == 0 {
		return failf("no node accepted a connection to vhost %s: %s", vhost, strings.Join(errs, "; "))
	}
	queue := Prefix + s.probeID
	ch, err := conns[nodes[0]].Channel()
	if err != nil {
		return failf("open a channel: %v", err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, probeQueueArgs); err != nil {
		return failf("declare the probe quorum queue %s: %v", queue, err)
	}
	defer func() {
		// A fresh channel: the first may have been closed by an error.
		if ch, err := conns[nodes[0]].Channel(); err == nil {
			_, _ = ch.QueueDelete(queue, false, false, false)
			_ = ch.Close()
		}
	}()
	_ = ch.Close()

	var problems []string
	problems = append(problems, errs...)
	var samples []time.Duration
	var pairs []string
	for k, p := range nodes {
		c := nodes[(k+1)%len(nodes)]
		pairs = append(pairs, fmt.Sprintf("%d→%d", p+1, c+1))
		lat, err := s.pair(ctx, conns[p], conns[c], queue, p)
		samples = append(samples, lat...)
		if err != nil {
			problems = append(problems, fmt.Sprintf("node %d → node %d: %v", p+1, c+1, err))
		}
	}
	s.samples = append(s.samples, samples...)
	detail := fmt.Sprintf("%d messages through quorum queue %s, published→consumed on nodes %s", len(samples), queue, strings.Join(pairs, ", "))
	if len(nodes) == 1 {
		detail += " (one node reachable: consumed on the node that published)"
	}
	if l := latencyOf(samples); l != nil {
		detail += "; " + l.String()
	}
	if len(problems) > 0 {
		return failf("%s; %s", limit(problems, 10), detail)
	}
	return passf("%s", detail)
}

// pair publishes s.opts.Messages messages through pub, one at a time, and
// consumes each through con, comparing every byte and property. It returns
// the latency of each message that arrived intact.
func (s *session) pair(ctx context.Context, pub, con *amqp.Connection, queue string, node int) ([]time.Duration, error) {
	cch, err := con.Channel()
	if err != nil {
		return nil, fmt.Errorf("consumer channel: %w", err)
	}
	defer cch.Close()
	if err := cch.Qos(s.opts.Messages, 0, false); err != nil {
		return nil, fmt.Errorf("consumer prefetch: %w", err)
	}
	deliveries, err := cch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", queue, err)
	}
	pch, err := pub.Channel()
	if err != nil {
		return nil, fmt.Errorf("publisher channel: %w", err)
	}
	defer pch.Close()
	if err := pch.Confirm(false); err != nil {
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	returns := pch.NotifyReturn(make(chan amqp.Return, 1))
	user := s.opts.Target.AMQP[node].Username

	var lat []time.Duration
	for i := 0; i < s.opts.Messages; i++ {
		msg := probeMessage(fmt.Sprintf("%s-%d-%d", s.probeID, node+1, i), i, user)
		start := time.Now()
		dc, err := pch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, msg)
		if err != nil {
			return lat, fmt.Errorf("publish message %d: %w", i, err)
		}
		wctx, cancel := context.WithTimeout(ctx, s.opts.Wait)
		d, err := receive(wctx, deliveries, returns)
		elapsed := time.Since(start)
		if err != nil {
			cancel()
			return lat, fmt.Errorf("message %d: %w", i, err)
		}
		acked, err := dc.WaitContext(wctx)
		cancel()
		if err != nil {
			return lat, fmt.Errorf("message %d: no publisher confirm within %s: %w", i, s.opts.Wait, err)
		}
		if !acked {
			return lat, fmt.Errorf("message %d: the broker nacked the publish", i)
		}
		if err := d.Ack(false); err != nil {
			return lat, fmt.Errorf("ack message %d: %w", i, err)
		}
		if diff := compare(msg, d); len(diff) > 0 {
			return lat, fmt.Errorf("message %d changed in transit: %s", i, strings.Join(diff, "; "))
		}
		if d.Exchange != "" || d.RoutingKey != queue || d.Redelivered {
			return lat, fmt.Errorf("message %d: delivered from exchange %q key %q redelivered=%v, want the default exchange, key %q, first delivery",
				i, d.Exchange, d.RoutingKey, d.Redelivered, queue)
		}
		lat = append(lat, elapsed)
	}
	return lat, nil
}

// receive waits for the next delivery, failing on a returned (unroutable)
// message or a closed channel.
func receive(ctx context.Context, deliveries <-chan amqp.Delivery, returns <-chan amqp.Return) (amqp.Delivery, error) {
	select {
	case d, ok := <-deliveries:
		if !ok {
			return d, errors.New("the consumer's channel closed")
		}
		return d, nil
	case r := <-returns:
		return amqp.Delivery{}, fmt.Errorf("returned as unroutable: %d %s", r.ReplyCode, r.ReplyText)
	case <-ctx.Done():
		return amqp.Delivery{}, fmt.Errorf("not delivered: %w", ctx.Err())
	}
}

// probeMessage sets every AMQP basic property, and headers of every field
// type RabbitMQ supports, so that a broker or proxy that rewrites any of them
// is caught. Bodies vary in size (the first is empty) and hold every byte
// value.
func probeMessage(id string, i int, user string) amqp.Publishing {
	body := make([]byte, (i*1499)%8192)
	for j := range body {
		body[j] = byte(j*7 + i)
	}
	return amqp.Publishing{
		Headers: amqp.Table{
			"warren-verify": id,
			"string":        "ünïcødé ✓",
			"bool":          true,
			"int8":          int8(-8),
			"uint8":         uint8(200),
			"int16":         int16(-1600),
			"uint16":        uint16(60000),
			"int32":         int32(-320000),
			"uint32":        uint32(4000000000),
			"int64":         int64(-1) << 40,
			"float32":       float32(1.5),
			"float64":       2.25,
			"decimal":       amqp.Decimal{Scale: 2, Value: 12345},
			"timestamp":     time.Unix(1700000000, 0),
			"bytes":         []byte{0, 1, 2, 254, 255},
			"void":          nil,
			"array":         []any{"a", int32(1), true},
			"table":         amqp.Table{"nested": "yes", "n": int64(7)},
		},
		ContentType:     "application/octet-stream",
		ContentEncoding: "identity",
		DeliveryMode:    amqp.Persistent,
		Priority:        5,
		CorrelationId:   "corr-" + id,
		ReplyTo:         Prefix + "reply",
		// Long enough never to expire during a check.
		Expiration: "600000",
		MessageId:  id,
		Timestamp:  time.Unix(time.Now().Unix(), 0),
		Type:       Prefix + "probe",
		// RabbitMQ rejects a user-id that differs from the connection's
		// user, so this also proves the broker validated it.
		UserId: user,
		AppId:  "warren-verify",
		Body:   body,
	}
}

// compare lists every difference between what was published and what was
// delivered.
func compare(p amqp.Publishing, d amqp.Delivery) []string {
	var diff []string
	if !bytes.Equal(p.Body, d.Body) {
		diff = append(diff, fmt.Sprintf("body: sent %d bytes, got %d bytes that differ", len(p.Body), len(d.Body)))
	}
	prop := func(name string, sent, got any) {
		if !equalField(sent, got) {
			diff = append(diff, fmt.Sprintf("%s: sent %#v, got %#v", name, sent, got))
		}
	}
	prop("content-type", p.ContentType, d.ContentType)
	prop("content-encoding", p.ContentEncoding, d.ContentEncoding)
	prop("delivery-mode", p.DeliveryMode, d.DeliveryMode)
	prop("priority", p.Priority, d.Priority)
	prop("correlation-id", p.CorrelationId, d.CorrelationId)
	prop("reply-to", p.ReplyTo, d.ReplyTo)
	prop("expiration", p.Expiration, d.Expiration)
	prop("message-id", p.MessageId, d.MessageId)
	prop("timestamp", p.Timestamp, d.Timestamp)
	prop("type", p.Type, d.Type)
	prop("user-id", p.UserId, d.UserId)
	prop("app-id", p.AppId, d.AppId)
	keys := map[string]bool{}
	for k := range p.Headers {
		keys[k] = true
	}
	for k := range d.Headers {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		sent, sok := p.Headers[k]
		got, gok := d.Headers[k]
		switch {
		case !gok:
			diff = append(diff, fmt.Sprintf("header %s: sent %#v, missing on delivery", k, sent))
		case !sok:
			diff = append(diff, fmt.Sprintf("header %s: not sent, delivered as %#v", k, got))
		default:
			prop("header "+k, sent, got)
		}
	}
	return diff
}

// equalField compares AMQP field values by type and value; times compare as
// instants, since the client decodes them in the local zone.
func equalField(a, b any) bool {
	switch av := a.(type) {
	case time.Time:
		bv, ok := b.(time.Time)
		return ok && av.Equal(bv)
	case amqp.Table:
		bv, ok := b.(amqp.Table)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k, v := range av {
			if w, ok := bv[k]; !ok || !equalField(v, w) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !equalField(av[i], bv[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
