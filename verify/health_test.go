package verify

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab"
)

func TestHealthPassesOnAHealthyCluster(t *testing.T) {
	e := brokertest.New(t)
	ch := e.Channel(t, e.Target, 0)
	_, err := ch.QueueDeclare("orders", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	waitFullMembership(t, e, "orders")

	r := run(t, options(t, e, AreaHealth))
	require.NoError(t, r.Err())
	o := options(t, e)
	for _, u := range e.Target.AMQP {
		assert.Equal(t, Pass, find(t, r, fmt.Sprintf("amqp login %s:%d", u.Host, u.Port)).Status)
	}
	assert.Equal(t, Pass, find(t, r, "http login "+e.Target.API).Status)
	for _, api := range o.NodeAPIs {
		assert.Equal(t, Pass, find(t, r, "http login "+api).Status)
	}
	assert.Contains(t, find(t, r, "quorum queues").Detail, "1 quorum queues")
	assert.Contains(t, find(t, r, "running nodes").Detail, fmt.Sprintf("%d of %d", o.expected(), o.expected()))
}

func (o Options) expected() int {
	if o.ExpectNodes > 0 {
		return o.ExpectNodes
	}
	return len(o.Target.AMQP)
}

func TestWrongPasswordFailsEveryLogin(t *testing.T) {
	e := brokertest.New(t)
	o := options(t, e, AreaHealth)
	for i := range o.Target.AMQP {
		o.Target.AMQP[i].Password = "not-the-password"
	}
	o.Target.APIPassword = "not-the-password"

	r := run(t, o)
	err := r.Err()
	require.Error(t, err)
	for _, u := range o.Target.AMQP {
		c := find(t, r, fmt.Sprintf("amqp login %s:%d", u.Host, u.Port))
		assert.Equal(t, Fail, c.Status)
		assert.Contains(t, c.Detail, "check the user name and password")
		assert.NotContains(t, c.Detail, "not-the-password", "a password must never reach a report")
		assert.Contains(t, err.Error(), c.Name, "the error names every failed check")
	}
	c := find(t, r, "http login "+o.Target.API)
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Detail, "401")
	// The cluster-wide checks read the API with the same credentials.
	assert.Equal(t, Fail, find(t, r, "running nodes").Status)
}

func TestServiceAddressIsLoggedInto(t *testing.T) {
	e := brokertest.New(t)
	requireLab(t, e)
	o := options(t, e, AreaHealth)
	n := e.Lab.NodesOf(lab.Target)[1]
	// No credentials in the URL: the target's are used.
	o.ServiceURL = fmt.Sprintf("amqp://127.0.0.1:%d/", n.AMQPPort)
	o.ServiceAPI = fmt.Sprintf("http://127.0.0.1:%d", n.APIPort)
	r := run(t, o)
	require.NoError(t, r.Err())
	assert.Equal(t, Pass, find(t, r, fmt.Sprintf("amqp login service 127.0.0.1:%d", n.AMQPPort)).Status)
	assert.Contains(t, find(t, r, "http login service "+o.ServiceAPI).Detail, n.Erlang)

	// A Service that points nowhere fails.
	o.ServiceURL = "amqp://127.0.0.1:1/"
	o.ServiceAPI = ""
	r = run(t, o)
	c := find(t, r, "amqp login service 127.0.0.1:1")
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Detail, "connection refused")
}

func TestExpectedNodeCountIsEnforced(t *testing.T) {
	e := brokertest.New(t)
	o := options(t, e, AreaHealth)
	o.ExpectNodes = o.expected() + 2
	r := run(t, o)
	c := find(t, r, "running nodes")
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Detail, fmt.Sprintf("expected %d", o.ExpectNodes))
}

// waitFullMembership waits until a new quorum queue has every member online
// and a leader, which takes a moment after the declare returns.
func waitFullMembership(t *testing.T, e *brokertest.Env, queue string) {
	t.Helper()
	brokertest.Eventually(t, 30*time.Second, func() error {
		var q queueInfo
		if err := e.TargetAPI.Get(context.Background(), "queues/"+e.Vhost+"/"+queue, &q); err != nil {
			return err
		}
		if len(q.Online) < len(e.Target.AMQP) || q.Leader == "" {
			return fmt.Errorf("%s not fully online yet: %+v", queue, q)
		}
		return nil
	})
}

func TestQuorumQueueWithAMissingMemberFails(t *testing.T) {
	e := brokertest.New(t)
	requireLab(t, e) // removes a member with the lab's rabbitmq-queues
	ch := e.Channel(t, e.Target, 0)
	for _, q := range []string{"orders", "payments"} {
		_, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		require.NoError(t, err)
		waitFullMembership(t, e, q)
	}
	o := options(t, e, AreaHealth)
	require.Equal(t, Pass, find(t, run(t, o), "quorum queues").Status, "the check must pass before the member is removed")

	// RabbitMQ 3.10's HTTP API cannot remove a member; rabbitmq-queues can.
	victim := e.Lab.NodesOf(lab.Target)[2]
	ctl := "/usr/lib/rabbitmq/bin/rabbitmq-queues"
	cmd := exec.Command(ctl, "-n", e.Lab.NodesOf(lab.Target)[0].Erlang, "delete_member", "--vhost", e.Vhost, "payments", victim.Erlang)
	cmd.Env = append(cmd.Environ(), "HOME="+e.Lab.Dir, "RABBITMQ_USE_LONGNAME=false") // HOME holds the lab's Erlang cookie
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	c := find(t, run(t, o), "quorum queues")
	assert.Equal(t, Fail, c.Status)
	assert.Contains(t, c.Detail, e.Vhost+"/payments: 2 of 3 members (no member on "+victim.Erlang+")")
	assert.NotContains(t, c.Detail, "orders", "only the degraded queue is named")
}

// A stopped node fails its login, the node count, and the quorum queues it
// was a member of; round trips still run through the other nodes but fail.
func TestStoppedNodeFailsHealth(t *testing.T) {
	e := brokertest.NewDisruptive(t)
	requireLab(t, e)
	ch := e.Channel(t, e.Target, 0)
	_, err := ch.QueueDeclare("orders", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	waitFullMembership(t, e, "orders")

	stopped := e.Lab.NodesOf(lab.Target)[2]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, e.Lab.StopNode(ctx, stopped.ID))

	r := run(t, options(t, e, AreaHealth, AreaRoundTrip))
	login := find(t, r, fmt.Sprintf("amqp login 127.0.0.1:%d", stopped.AMQPPort))
	assert.Equal(t, Fail, login.Status)
	assert.Contains(t, login.Detail, "connection refused")
	assert.Equal(t, Fail, find(t, r, fmt.Sprintf("http login http://127.0.0.1:%d", stopped.APIPort)).Status)
	nodes := find(t, r, "running nodes")
	assert.Equal(t, Fail, nodes.Status)
	assert.Contains(t, nodes.Detail, "2 of 3 expected nodes running; not running: "+stopped.Erlang)
	qq := find(t, r, "quorum queues")
	assert.Equal(t, Fail, qq.Status)
	assert.Contains(t, qq.Detail, "orders: offline member "+stopped.Erlang)
	rt := find(t, r, "round trip "+e.Vhost)
	assert.Equal(t, Fail, rt.Status)
	assert.Contains(t, rt.Detail, "10 messages", "the two running nodes still carry their round trips")
	for _, name := range []string{"alarms", "partitions"} {
		assert.Equal(t, Pass, find(t, r, name).Status, name)
	}
	assert.True(t, strings.Contains(r.Err().Error(), "running nodes"))
}
