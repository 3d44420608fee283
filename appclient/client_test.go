package appclient_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/appclient"
	"github.com/warrenmq/warren/internal/brokertest"
)

// A URL that refuses connections comes first: the client moves on to the
// next one.
func TestDialFailsOverToTheNextURL(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	dead := e.Target.AMQP[0]
	dead.Port = 1 // nothing listens there
	c := dial(t, "failover", append([]string{dead.String()}, urls(e.Target, 1)...))
	assert.True(t, c.Connected())
	p := c.NewPublisher(appclient.PublisherOptions{AllowUnroutable: true})
	require.NoError(t, p.Publish(context.Background(), "amq.direct", "nowhere", amqp.Publishing{Body: []byte("x")}))
}

// A refused login fails Dial at once, without the password in the error.
func TestDialRefusedLoginFailsFast(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	u := e.Target.AMQP[0]
	u.Password = "not-the-password-s3cret"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := appclient.Dial(ctx, appclient.Config{URLs: []string{u.String()}, Logger: testLogger(t)})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 10*time.Second, "a refused login is not retried")
	assert.Contains(t, err.Error(), "user name and password")
	assert.NotContains(t, err.Error(), "s3cret")
}

func TestDialRejectsBadConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := appclient.Dial(ctx, appclient.Config{})
	assert.ErrorContains(t, err, "no AMQP URL")
	_, err = appclient.Dial(ctx, appclient.Config{URLs: []string{"http://user:s3cret@host/"}})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
	_, err = appclient.Dial(ctx, appclient.Config{URLs: []string{"amqp://h/"}, Backoff: appclient.Backoff{Multiplier: 0.5}})
	assert.ErrorContains(t, err, "multiplier")
}

// After a reconnect the client declares its topology again: a queue
// deleted while the service was cut off, its binding, and an exclusive
// queue (which dies with the connection) are back.
func TestTopologyIsDeclaredAgainAfterReconnect(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	ctx := context.Background()
	c := dial(t, "topology", urls(e.Target))
	require.NoError(t, c.Declare(ctx,
		appclient.Exchange{Name: "orders", Kind: amqp.ExchangeTopic},
		appclient.Queue{Name: "orders.created", Type: appclient.Quorum},
		appclient.Binding{Exchange: "orders", Queue: "orders.created", Key: "order.created"},
		appclient.Queue{Name: "replies", Type: appclient.Classic, Exclusive: true},
	))
	// An operator deletes the queue, then the connection drops.
	require.NoError(t, e.TargetAPI.DeleteQueue(ctx, e.Vhost, "orders.created"))
	require.Equal(t, 1, brokertest.CloseConnections(t, e.TargetAPI, e.Vhost, "topology"))

	p := c.NewPublisher(appclient.PublisherOptions{})
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Mandatory publishing fails unless the binding and queue are back.
	brokertest.Eventually(t, 30*time.Second, func() error {
		return p.Publish(pctx, "orders", "order.created", amqp.Publishing{Body: []byte("x")})
	})
	require.NoError(t, p.Publish(pctx, "", "replies", amqp.Publishing{Body: []byte("x")}), "the exclusive queue is back")
	q, err := e.TargetAPI.GetQueue(ctx, e.Vhost, "orders.created")
	require.NoError(t, err)
	assert.Equal(t, "quorum", q.Type)
}

// A declaration the broker refuses is an error, and is not recorded.
func TestDeclareRefusedIsAnError(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	ctx := context.Background()
	c := dial(t, "refused", urls(e.Target, 0))
	require.NoError(t, c.Declare(ctx, appclient.Queue{Name: "q", Type: appclient.Quorum}))
	err := c.Declare(ctx, appclient.Queue{Name: "q", Type: appclient.Classic})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `queue "q"`)
	assert.Contains(t, err.Error(), "PRECONDITION_FAILED")
	// The client still works.
	require.NoError(t, c.Declare(ctx, appclient.Queue{Name: "q", Type: appclient.Quorum}))
	assert.ErrorContains(t, c.Declare(ctx, appclient.Queue{Name: ""}), "server-named")
}

// Connections closed under a steady flow (3 times, publisher's and
// consumer's alike): no confirmed message is lost, on the source's classic
// queue and on the cluster's quorum queue.
func TestConnectionsClosedLoseNothing(t *testing.T) {
	t.Parallel()
	for _, side := range []string{"source", "target"} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			e := brokertest.New(t)
			ep, api, typ := e.Source, e.SourceAPI, appclient.Classic
			if side == "target" {
				ep, api, typ = e.Target, e.TargetAPI, appclient.Quorum
			}
			ctx := context.Background()
			pubC := dial(t, "pub", urls(ep))
			consC := dial(t, "cons", urls(ep))
			topo := []appclient.Declaration{
				appclient.Exchange{Name: "events", Kind: amqp.ExchangeDirect},
				appclient.Queue{Name: "events", Type: typ},
				appclient.Binding{Exchange: "events", Queue: "events", Key: "k"},
			}
			require.NoError(t, pubC.Declare(ctx, topo...))
			require.NoError(t, consC.Declare(ctx, topo...))
			f := startFlow(t, pubC, consC, "events", "k", "events", 300)
			f.waitConfirmed(300, 30*time.Second)
			for round := 1; round <= 3; round++ {
				name := []string{"pub", "cons", "pub"}[round-1]
				if round == 3 {
					// Both at once.
					brokertest.CloseConnections(t, api, e.Vhost, "cons")
				}
				n := brokertest.CloseConnections(t, api, e.Vhost, name)
				t.Logf("round %d: closed %d %q connection(s)", round, n, name)
				f.waitConfirmed(300, 60*time.Second)
			}
			fig := f.finish()
			t.Logf("%s, connections closed 3 times: %s; publisher %+v; consumer %+v", side, fig, f.pub.Stats(), f.cons.Stats())
			assert.Zero(t, fig.Lost, "confirmed messages never consumed: %v", fig.LostIDs)
			assert.Greater(t, fig.Published, 1000)
		})
	}
}

var _ = fmt.Sprint
