package verify

import (
	"context"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
)

func TestRoundTripCarriesEveryByteAndProperty(t *testing.T) {
	e := brokertest.New(t)
	ch := e.Channel(t, e.Target, 0)
	_, err := ch.QueueDeclare("users", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	publish(t, ch, "users", 3)

	r := run(t, options(t, e, AreaRoundTrip))
	require.NoError(t, r.Err())
	c := find(t, r, "round trip "+e.Vhost)
	assert.Equal(t, Pass, c.Status)
	nodes := len(e.Target.AMQP)
	require.NotNil(t, r.Latency)
	assert.Equal(t, 5*nodes, r.Latency.Samples, "every node publishes 5 messages")
	assert.Positive(t, r.Latency.P50)
	assert.GreaterOrEqual(t, r.Latency.P99, r.Latency.P50)
	if nodes > 1 {
		assert.Contains(t, c.Detail, "1→2")
	}

	// Users' queues are untouched and the probe queue is gone.
	assert.Equal(t, map[string]int{"users": 3}, depths(t, e.Channel(t, e.Target, 0), []string{"users"}))
	var queues []queueInfo
	require.NoError(t, e.TargetAPI.Get(context.Background(), "queues/"+e.Vhost, &queues))
	for _, q := range queues {
		assert.False(t, strings.HasPrefix(q.Name, Prefix), "probe queue %s left behind", q.Name)
	}
}

// A user who may publish to but not read from the probe queue must fail the
// round trip: the check has to be able to fail.
func TestRoundTripFailsWhenProbesCannotBeConsumed(t *testing.T) {
	e := brokertest.New(t)
	put(t, e.TargetAPI, "permissions/"+e.Vhost+"/"+e.Target.APIUser, map[string]string{
		"configure": ".*", "write": ".*", "read": `^(?!warren\.verify\.).*`,
	})
	r := run(t, options(t, e, AreaRoundTrip))
	c := find(t, r, "round trip "+e.Vhost)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Detail, "ACCESS_REFUSED")
	assert.Contains(t, r.Err().Error(), "round trip "+e.Vhost)
}

func TestCompareFindsEveryChange(t *testing.T) {
	sent := probeMessage("id-1", 3, "admin")
	d := amqp.Delivery{
		Headers: amqp.Table{}, ContentType: sent.ContentType, ContentEncoding: sent.ContentEncoding,
		DeliveryMode: sent.DeliveryMode, Priority: sent.Priority, CorrelationId: sent.CorrelationId,
		ReplyTo: sent.ReplyTo, Expiration: sent.Expiration, MessageId: sent.MessageId,
		Timestamp: sent.Timestamp.In(time.UTC), Type: sent.Type, UserId: sent.UserId, AppId: sent.AppId,
		Body: append([]byte(nil), sent.Body...),
	}
	for k, v := range sent.Headers {
		d.Headers[k] = v
	}
	assert.Empty(t, compare(sent, d), "an identical delivery (timestamp in another zone) has no difference")

	d.Body[len(d.Body)-1] ^= 1
	d.Priority = 0
	d.Headers["int32"] = int64(-320000) // same value, another AMQP type
	delete(d.Headers, "bytes")
	d.Headers["x-added"] = "by a proxy"
	d.Headers["table"] = amqp.Table{"nested": "no", "n": int64(7)}
	diff := strings.Join(compare(sent, d), "\n")
	for _, want := range []string{"body:", "priority:", "header int32:", "header bytes: sent", "header x-added: not sent", "header table:"} {
		assert.Contains(t, diff, want)
	}
	assert.NotContains(t, diff, "header string")
}

func TestLatencyPercentiles(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	l := latencyOf(s)
	assert.Equal(t, Latency{Samples: 100, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}, *l)
	assert.Equal(t, 7*time.Millisecond, latencyOf([]time.Duration{7 * time.Millisecond}).P99)
	assert.Nil(t, latencyOf(nil))
}

// BenchmarkRoundTrip measures one message's trip: publish with confirm
// through one node, delivery through the next. Reported as p50/p99.
func BenchmarkRoundTrip(b *testing.B) {
	e := brokertest.New(b)
	o := Options{Target: e.Target, Vhosts: []string{e.Vhost}, Areas: []Area{AreaRoundTrip}, Messages: 50}
	var all []time.Duration
	for b.Loop() {
		s := &session{opts: o, report: &Report{}, probeID: randomID(), vhosts: o.Vhosts}
		require.NoError(b, s.opts.defaults())
		s.roundTrips(context.Background())
		require.NoError(b, s.report.Err())
		all = append(all, s.samples...)
	}
	l := latencyOf(all)
	b.ReportMetric(float64(l.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(l.P99.Microseconds())/1000, "p99-ms")
}
