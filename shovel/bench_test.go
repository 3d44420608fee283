package shovel_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/shovel"
)

// BenchmarkDrain moves 100k persistent 1 KiB messages spread over 4 quorum
// queues with warren (shovels on the target side, then on the source side),
// and the same load through one hand-made shovel on one queue in the same
// run, and reports both rates:
//
//	go test -run '^$' -bench Drain -benchtime 1x ./shovel/
func BenchmarkDrain(b *testing.B) {
	for _, side := range []shovel.Side{shovel.OnTarget, shovel.OnSource} {
		b.Run(string(side), func(b *testing.B) { benchDrain(b, side) })
	}
}

func benchDrain(b *testing.B, side shovel.Side) {
	const total, queues = 100_000, 4
	body := bytes.Repeat([]byte("x"), 1024)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := brokertest.New(b)
		src := e.Channel(b, e.Source, 0)
		dst := e.Channel(b, e.Target, 0)
		names := make([]string, queues)
		for q := range names {
			names[q] = fmt.Sprintf("bench-%d", q)
			declare(b, src, names[q], nil)
			declare(b, dst, names[q], quorum)
			publishN(b, src, names[q], total/queues, body)
		}
		// The hand-made shovel's queue lives in a vhost of its own, out of
		// warren's way.
		other := brokertest.VhostName(b)
		e.CreateVhost(b, other)
		msrc, mdst := channelIn(b, e.Source, other), channelIn(b, e.Target, other)
		declare(b, msrc, "manual", nil)
		declare(b, mdst, "manual", quorum)
		publishN(b, msrc, "manual", total, body)

		b.StartTimer()
		start := time.Now()
		opts := drainOpts(e, e.Vhost)
		opts.Side = side
		report, err := shovel.Drain(context.Background(), opts)
		require.NoError(b, err)
		warrenRate := float64(total) / time.Since(start).Seconds()
		require.Equal(b, total, report.Messages)

		start = time.Now()
		manual(b, e, other, mdst, total)
		manualRate := float64(total) / time.Since(start).Seconds()
		b.StopTimer()

		b.ReportMetric(warrenRate, "warren-msgs/s")
		b.ReportMetric(manualRate, "one-shovel-msgs/s")
		b.Logf("warren: %.0f msg/s over %d queues (%s side); one hand-made shovel: %.0f msg/s", warrenRate, queues, report.Side, manualRate)
	}
}

// manual drains "manual" with a single shovel declared by hand, the way an
// operator would, and waits for the target to hold every message.
func manual(b *testing.B, e *brokertest.Env, vhost string, dst *amqp.Channel, n int) {
	ctx := context.Background()
	value := map[string]any{
		"src-protocol": "amqp091", "src-uri": e.Source.URLWithVhost(0, vhost), "src-queue": "manual",
		"dest-protocol": "amqp091", "dest-uri": shovel.DirectURI(vhost), "dest-queue": "manual",
		"ack-mode": "on-confirm", "src-delete-after": "queue-length",
	}
	path := "parameters/shovel/" + broker.PathEscape(vhost) + "/manual"
	require.NoError(b, e.TargetAPI.Do(ctx, http.MethodPut, path, map[string]any{"value": value}, nil))
	defer func() { _ = e.TargetAPI.Do(ctx, http.MethodDelete, path, nil, nil) }()
	for depth(b, dst, "manual") < n {
		time.Sleep(50 * time.Millisecond)
	}
}

func publishN(b *testing.B, ch *amqp.Channel, queue string, n int, body []byte) {
	msgs := make([]amqp.Publishing, n)
	for i := range msgs {
		msgs[i] = amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}
	}
	publish(b, ch, queue, msgs)
}

func channelIn(b *testing.B, ep broker.Endpoint, vhost string) *amqp.Channel {
	conn, err := ep.Dial(context.Background(), vhost)
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(b, err)
	return ch
}
