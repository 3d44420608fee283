package appclient_test

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/appclient"
	"github.com/warrenmq/warren/internal/brokertest"
)

// An unroutable message is an error to the caller, not a silent drop,
// unless the publisher allows it.
func TestPublishUnroutableIsAnError(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	ctx := context.Background()
	c := dial(t, "unroutable", urls(e.Target, 0))
	require.NoError(t, c.Declare(ctx, appclient.Exchange{Name: "lonely"}, appclient.Queue{Name: "bound", Type: appclient.Quorum},
		appclient.Binding{Exchange: "lonely", Queue: "bound", Key: "yes"}))
	p := c.NewPublisher(appclient.PublisherOptions{})

	err := p.Publish(ctx, "lonely", "no-queue-for-this", amqp.Publishing{MessageId: "m-1", Body: []byte("x")})
	require.ErrorIs(t, err, appclient.ErrUnroutable)
	var re *appclient.ReturnedError
	require.True(t, errors.As(err, &re))
	assert.Equal(t, "m-1", re.MessageID)
	assert.Equal(t, "no-queue-for-this", re.RoutingKey)
	assert.Equal(t, uint16(amqp.NoRoute), re.Code)

	// Routable messages around it are confirmed normally.
	require.NoError(t, p.Publish(ctx, "lonely", "yes", amqp.Publishing{Body: []byte("x")}))
	assert.Equal(t, int64(1), p.Stats().Returned)

	lax := c.NewPublisher(appclient.PublisherOptions{AllowUnroutable: true})
	assert.NoError(t, lax.Publish(ctx, "lonely", "no-queue-for-this", amqp.Publishing{Body: []byte("x")}))
	require.NoError(t, p.Close(ctx))
	require.NoError(t, lax.Close(ctx))
	assert.ErrorIs(t, p.Publish(ctx, "lonely", "yes", amqp.Publishing{}), appclient.ErrClosed)
}

// Publishing to a missing exchange closes the channel (404): that message
// fails, and the publisher goes on with the others.
func TestPublishToAMissingExchangeFailsThatMessageOnly(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dial(t, "missing", urls(e.Source))
	require.NoError(t, c.Declare(ctx, appclient.Queue{Name: "q", Type: appclient.Classic}))
	p := c.NewPublisher(appclient.PublisherOptions{})
	err := p.Publish(ctx, "no-such-exchange", "k", amqp.Publishing{Body: []byte("x")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no-such-exchange")
	assert.Contains(t, err.Error(), "NOT_FOUND")
	require.NoError(t, p.Publish(ctx, "", "q", amqp.Publishing{Body: []byte("after")}))
}

// Publish gives up when its context ends, and says whether the message
// went out.
func TestPublishHonoursItsContext(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	c := dial(t, "ctx", urls(e.Target, 0))
	p := c.NewPublisher(appclient.PublisherOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.Publish(ctx, "", "q", amqp.Publishing{})
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, appclient.ErrUnconfirmed, "the message never went out")
}

// A queue that refuses messages (overflow reject-publish at its length
// limit) nacks them. The publisher tries again a few times on new
// channels, then Publish says so.
func TestPublishNackedIsAnErrorAfterRetries(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	ctx := context.Background()
	c := dial(t, "nack", urls(e.Source))
	require.NoError(t, c.Declare(ctx, appclient.Queue{Name: "full", Type: appclient.Classic,
		Args: amqp.Table{"x-max-length": 1, "x-overflow": "reject-publish"}}))
	p := c.NewPublisher(appclient.PublisherOptions{NackRetries: 2})
	require.NoError(t, p.Publish(ctx, "", "full", amqp.Publishing{Body: []byte("1")}))
	err := p.Publish(ctx, "", "full", amqp.Publishing{Body: []byte("2")})
	assert.ErrorIs(t, err, appclient.ErrNacked)
	assert.ErrorContains(t, err, "refused 3 times")
	assert.Equal(t, int64(3), p.Stats().Nacked)

	once := c.NewPublisher(appclient.PublisherOptions{NackRetries: -1})
	assert.ErrorIs(t, once.Publish(ctx, "", "full", amqp.Publishing{Body: []byte("3")}), appclient.ErrNacked)
	assert.Equal(t, int64(1), once.Stats().Nacked)
}

// A message amqp091 cannot encode is refused up front, and the publisher
// goes on.
func TestPublishRefusesHeadersItCannotEncode(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	ctx := context.Background()
	c := dial(t, "headers", urls(e.Source))
	require.NoError(t, c.Declare(ctx, appclient.Queue{Name: "q"}))
	p := c.NewPublisher(appclient.PublisherOptions{})
	err := p.Publish(ctx, "", "q", amqp.Publishing{Headers: amqp.Table{"bad": struct{}{}}})
	assert.ErrorContains(t, err, "headers")
	require.NoError(t, p.Publish(ctx, "", "q", amqp.Publishing{Headers: amqp.Table{"good": int32(1)}}))
}
