package shovel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/shovel"
)

// Publishers may set user-id, which the source checked against their own
// login. Such a message must still arrive on the target, with its user-id.
func TestDrainKeepsValidatedUserID(t *testing.T) {
	e := brokertest.New(t)
	src := e.Channel(t, e.Source, 0)
	dst := e.Channel(t, e.Target, 0)
	declare(t, src, "signed", nil)
	declare(t, dst, "signed", quorum)
	user := e.Source.AMQP[0].Username
	publish(t, src, "signed", []amqp.Publishing{{UserId: user, MessageId: "a", Body: []byte("signed")}})

	// From the source side the shovel logs into the target as another
	// user, and the target refuses the message: it must stay on the source.
	opts := drainOpts(e, e.Vhost)
	opts.Side, opts.StallTimeout = shovel.OnSource, 3*time.Second
	_, err := shovel.Drain(context.Background(), opts)
	require.Error(t, err)
	t.Log(err)
	removed, err := shovel.Abort(context.Background(), opts, false)
	require.NoError(t, err)
	assert.Len(t, removed, 1)
	brokertest.Eventually(t, 5*time.Second, func() error {
		if depth(t, src, "signed") != 1 {
			return errors.New("message not back on the source")
		}
		return nil
	})

	// From the target side the shovel publishes over a direct connection,
	// which the target trusts: the message arrives with its user-id.
	report, err := shovel.Drain(context.Background(), drainOpts(e, e.Vhost))
	require.NoError(t, err)
	require.Len(t, report.Queues, 1)
	assert.Equal(t, 1, report.Queues[0].Moved)
	got := consumeAll(t, dst, "signed")
	require.Len(t, got, 1)
	assert.Equal(t, user, got[0].UserId)
}
