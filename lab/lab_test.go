package lab_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab"
	"github.com/warrenmq/warren/migrate"
)

func TestConfigFormsClusterFromFixedMembers(t *testing.T) {
	t.Setenv(lab.EnvDir, t.TempDir())
	t.Setenv(lab.EnvTargetAMQPPort, "6001")
	l, err := lab.Default()
	require.NoError(t, err)

	targets := l.NodesOf(lab.Target)
	require.Len(t, targets, lab.TargetNodes)
	assert.Equal(t, []int{6001, 6002, 6003}, []int{targets[0].AMQPPort, targets[1].AMQPPort, targets[2].AMQPPort})
	assert.Equal(t, 26002, targets[1].DistPort)

	conf := l.Config(targets[1])
	assert.Contains(t, conf, "listeners.tcp.1 = 127.0.0.1:6002\n")
	assert.Contains(t, conf, "cluster_formation.peer_discovery_backend = classic_config\n")
	for i, n := range targets {
		assert.Contains(t, conf, fmt.Sprintf("cluster_formation.classic_config.nodes.%d = %s\n", i+1, n.Erlang))
	}
	src := l.Config(l.NodesOf(lab.Source)[0])
	assert.NotContains(t, src, "cluster_formation", "the source is a single node")
	assert.Contains(t, src, "loopback_users.guest = false")
}

func TestDefaultRejectsBadPort(t *testing.T) {
	t.Setenv(lab.EnvSourceAMQPPort, "not-a-port")
	_, err := lab.Default()
	require.ErrorContains(t, err, lab.EnvSourceAMQPPort)
}

// A second `lab up` on a running lab must not restart anything.
func TestUpTwiceChangesNothing(t *testing.T) {
	e := brokertest.New(t)
	ctx := context.Background()
	before := e.Lab.Status(ctx)
	require.NoError(t, e.Lab.Up(ctx))
	after := e.Lab.Status(ctx)
	require.Len(t, after, 1+lab.TargetNodes)
	for i := range before {
		assert.Equal(t, lab.Running, after[i].State, after[i].ID)
		assert.NotZero(t, after[i].PID)
		assert.Equal(t, before[i].PID, after[i].PID, "%s was restarted", after[i].ID)
	}
}

func TestAPIAnswersOnEveryNode(t *testing.T) {
	e := brokertest.New(t)
	for _, n := range e.Lab.Nodes {
		api, err := e.Lab.Endpoint(n).NewAPI()
		require.NoError(t, err)
		ov, err := api.Overview(context.Background())
		require.NoError(t, err, n.ID)
		assert.Equal(t, n.Erlang, ov.Node)
		assert.True(t, strings.HasPrefix(ov.RabbitMQVersion, "3."), ov.RabbitMQVersion)
	}
}

// roundTrip publishes with confirms through one connection and consumes the
// message back, checking body and headers.
func roundTrip(t *testing.T, ch *amqp.Channel, queue string) {
	t.Helper()
	require.NoError(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
	body := []byte(fmt.Sprintf("hello %s %d", queue, time.Now().UnixNano()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, ch.PublishWithContext(ctx, "", queue, true, false, amqp.Publishing{
		Body: body, DeliveryMode: amqp.Persistent, Headers: amqp.Table{"x-test": "lab"},
	}))
	select {
	case c := <-confirms:
		require.True(t, c.Ack, "broker nacked the publish")
	case <-ctx.Done():
		t.Fatal("no publisher confirm")
	}
	var got amqp.Delivery
	brokertest.Eventually(t, 10*time.Second, func() error {
		d, ok, err := ch.Get(queue, true)
		if err != nil || !ok {
			return fmt.Errorf("no message in %s yet (err %v)", queue, err)
		}
		got = d
		return nil
	})
	assert.Equal(t, body, got.Body)
	assert.Equal(t, "lab", got.Headers["x-test"])
}

func TestPublishConsumeOnEveryNode(t *testing.T) {
	e := brokertest.New(t)
	ch := e.Channel(t, e.Source, 0)
	_, err := ch.QueueDeclare("smoke", true, false, false, false, nil)
	require.NoError(t, err)
	roundTrip(t, ch, "smoke")

	for i := 0; i < e.Target.Nodes(); i++ {
		ch := e.Channel(t, e.Target, i)
		q := fmt.Sprintf("smoke-%d", i)
		_, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		require.NoError(t, err)
		roundTrip(t, ch, q)
	}
}

func TestQuorumQueueHasEveryMemberAndALeader(t *testing.T) {
	e := brokertest.New(t)
	ch := e.Channel(t, e.Target, 0)
	_, err := ch.QueueDeclare("qq", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)

	var q *broker.QueueInfo
	brokertest.Eventually(t, 20*time.Second, func() error {
		var err error
		if q, err = e.TargetAPI.GetQueue(context.Background(), e.Vhost, "qq"); err != nil {
			return err
		}
		if len(q.Online) != lab.TargetNodes || q.Leader == "" {
			return fmt.Errorf("queue not fully online yet: %+v", q)
		}
		return nil
	})
	assert.Equal(t, "quorum", q.Type)
	assert.Len(t, q.Members, lab.TargetNodes)
	var names []string
	for _, n := range e.Lab.NodesOf(lab.Target) {
		names = append(names, n.Erlang)
	}
	assert.ElementsMatch(t, names, q.Members)
	assert.Contains(t, names, q.Leader)
}

// down stops every node and frees its ports; up brings the whole lab back,
// cluster formed again. Disruptive: it holds the lab to itself.
func TestDownThenUp(t *testing.T) {
	e := brokertest.NewDisruptive(t)
	ctx := context.Background()
	require.NoError(t, e.Lab.Down(ctx))
	for _, st := range e.Lab.Status(ctx) {
		assert.Equal(t, lab.Down, st.State, st.ID)
		for _, port := range []int{st.AMQPPort, st.APIPort, st.DistPort} {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
			}
			assert.Error(t, err, "%s port %d still open after down", st.ID, port)
		}
	}
	require.NoError(t, e.Lab.Up(ctx))
	for _, st := range e.Lab.Status(ctx) {
		assert.Equal(t, lab.Running, st.State, st.ID)
	}
	roundTrip(t, e.Channel(t, e.Target, 2), declared(t, e.Channel(t, e.Target, 2), "after-restart"))

	// Right after a whole-cluster start the HTTP API lists every node as
	// running with no applications for a few seconds; warren's preflight
	// must wait that out rather than report the plugins missing.
	for _, side := range []*broker.API{e.SourceAPI, e.TargetAPI} {
		b, err := definitions.Probe(ctx, side)
		require.NoError(t, err)
		assert.Subset(t, b.Applications, []string{"rabbitmq_management", "rabbitmq_shovel", "rabbitmq_federation"}, b.Name)
	}
	// Disk and memory figures lag the same way; read as zeros they would
	// fail a migration's headroom check.
	_, err := migrate.Run(ctx, migrate.Options{Source: e.Source, Target: e.Target, Vhosts: []string{e.Vhost}, DryRun: true})
	require.NoError(t, err, "a dry-run migration right after the lab started")
}

func declared(t *testing.T, ch *amqp.Channel, name string) string {
	t.Helper()
	_, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	return name
}
