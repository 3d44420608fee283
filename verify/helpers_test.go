package verify

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab"
)

// The tests run against the brokers brokertest gives them: the local lab,
// or whatever WARREN_SOURCE_URL, WARREN_SOURCE_API, WARREN_TARGET_URL,
// WARREN_TARGET_API and the TLS variables name. These variables, with the
// CLI flags' names, tune them for a deployed cluster:
//
//	WARREN_NODE_API      each node's HTTP API, comma separated
//	WARREN_SERVICE_URL   the client Service's AMQP URL
//	WARREN_SERVICE_API   the client Service's HTTP API
//	WARREN_EXPECT_NODES  running nodes expected
//	WARREN_VHOST         more vhosts for TestTargetPassesEveryCheck
//	WARREN_DRAIN_REPORT  a drain report for TestTargetPassesEveryCheck

// isLab reports whether the tests' target is the local lab, which tests that
// stop nodes or use the lab's certificates need.
func isLab(e *brokertest.Env) bool {
	want := e.Lab.TargetEndpoint()
	if e.Target.API != want.API || len(e.Target.AMQP) != len(want.AMQP) {
		return false
	}
	for i, u := range e.Target.AMQP {
		if u.Host != want.AMQP[i].Host || u.Port != want.AMQP[i].Port {
			return false
		}
	}
	return true
}

func requireLab(t *testing.T, e *brokertest.Env) {
	t.Helper()
	if !isLab(e) {
		t.Skip("needs the local lab's nodes or certificates; WARREN_TARGET_* names another cluster")
	}
}

func envList(key string) []string {
	var out []string
	for _, s := range strings.Split(os.Getenv(key), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// options verifies the test's own vhost on the test's target.
func options(t *testing.T, e *brokertest.Env, areas ...Area) Options {
	t.Helper()
	src := e.Source
	o := Options{
		Target: e.Target, Source: &src, Vhosts: []string{e.Vhost}, Areas: areas, Messages: 5,
		NodeAPIs: envList("WARREN_NODE_API"), ServiceURL: os.Getenv("WARREN_SERVICE_URL"), ServiceAPI: os.Getenv("WARREN_SERVICE_API"),
	}
	if len(o.NodeAPIs) == 0 && isLab(e) {
		for _, n := range e.Lab.NodesOf(lab.Target) {
			o.NodeAPIs = append(o.NodeAPIs, e.Lab.Endpoint(n).API)
		}
	}
	if v := os.Getenv("WARREN_EXPECT_NODES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "WARREN_EXPECT_NODES")
		o.ExpectNodes = n
	}
	return o
}

func run(t *testing.T, o Options) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := Run(ctx, o)
	require.NoError(t, err)
	for _, c := range r.Checks {
		t.Logf("%-4s %s: %s (%s)", c.Status, c.Name, c.Detail, c.Duration)
	}
	return r
}

// find returns the check named name, failing the test when there is none.
func find(t *testing.T, r *Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.Name)
	}
	t.Fatalf("no check %q in the report; checks: %s", name, strings.Join(names, " | "))
	return Check{}
}

// put sends a request to the HTTP API and fails the test on error.
func put(t *testing.T, api *broker.API, path string, body any) {
	t.Helper()
	require.NoError(t, api.Do(context.Background(), http.MethodPut, path, body, nil), "PUT %s", path)
}

// topology is exchanges, queues and bindings to declare over AMQP.
type topology struct {
	exchanges [][3]string // name, type, "internal" or ""
	queues    []string
	bindings  []bind
}

type bind struct {
	source, dest string
	toExchange   bool
	key          string
	args         amqp.Table
}

// declare creates the topology through chs: exchanges and bindings
// through the first, queue i through chs[i % len(chs)]. A queue lives on
// (a quorum queue is led by) the node whose connection declared it, so
// one channel per node spreads them as a migration would.
func (top topology) declare(t *testing.T, chs []*amqp.Channel, withBindings func(bind) bool) {
	t.Helper()
	ch := chs[0]
	for _, x := range top.exchanges {
		require.NoError(t, ch.ExchangeDeclare(x[0], x[1], true, false, x[2] == "internal", false, nil), x[0])
	}
	for i, q := range top.queues {
		_, err := chs[i%len(chs)].QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		require.NoError(t, err, q)
	}
	for _, b := range top.bindings {
		if withBindings != nil && !withBindings(b) {
			continue
		}
		var err error
		if b.toExchange {
			err = ch.ExchangeBind(b.dest, b.key, b.source, false, b.args)
		} else {
			err = ch.QueueBind(b.dest, b.key, b.source, false, b.args)
		}
		require.NoError(t, err, "bind %s → %s", b.source, b.dest)
	}
}

// depths reads each queue's depth with a passive declare.
func depths(t *testing.T, ch *amqp.Channel, queues []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, q := range queues {
		got, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		require.NoError(t, err, q)
		out[q] = got.Messages
	}
	return out
}

// publish sends n persistent messages to the default exchange with confirms.
func publish(t *testing.T, ch *amqp.Channel, queue string, n int) {
	t.Helper()
	require.NoError(t, ch.Confirm(false))
	for i := 0; i < n; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", queue, true, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprintf("user message %d", i))})
		require.NoError(t, err)
		require.True(t, dc.Wait(), "publish to %s not confirmed", queue)
	}
}

// channels opens a channel to each node of ep, in order.
func channels(t *testing.T, e *brokertest.Env, ep broker.Endpoint) []*amqp.Channel {
	t.Helper()
	out := make([]*amqp.Channel, len(ep.AMQP))
	for i := range ep.AMQP {
		out[i] = e.Channel(t, ep, i)
	}
	return out
}
