package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
)

func TestTopicMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, key string
		want         bool
	}{
		{"#", "", true}, {"#", "a.b.c", true}, {"*", "", false}, {"*", "a", true}, {"*", "a.b", false},
		{"a.*", "a", false}, {"a.#", "a", true}, {"a.#", "a.b.c", true}, {"*.b.#", "x.b", true},
		{"a.*.c", "a.b.c", true}, {"a.*.c", "a.b.b.c", false}, {"#.c", "a.b.c", true}, {"#.c", "c", true},
		{"a.#.c", "a.c", true}, {"a.#.c", "a.x.y.c", true}, {"a.#.c", "a.x.y", false}, {"", "", true}, {"", "a", false},
		{"order.created", "order.created", true}, {"order.created", "order.deleted", false}, {"a.", "a.", true}, {"a.", "a", false},
	} {
		assert.Equal(t, c.want, topicMatch(c.pattern, c.key), "%q ~ %q", c.pattern, c.key)
	}
}

func TestHeadersMatch(t *testing.T) {
	args := func(s string) map[string]any { return bindingInfo{Arguments: json.RawMessage(s)}.args() }
	h := amqp.Table{"format": "pdf", "size": int64(5), "ratio": 1.5, "x-trace": "on"}
	for _, c := range []struct {
		args string
		want bool
	}{
		{`{"format":"pdf","size":5}`, true}, // x-match defaults to all
		{`{"x-match":"all","format":"pdf","size":6}`, false},
		{`{"x-match":"any","format":"doc","size":5}`, true},
		{`{"x-match":"any","format":"doc"}`, false},
		{`{"x-match":"all","size":"5"}`, false}, // a string is not a number
		{`{"x-match":"all","ratio":1.5}`, true},
		{`{"x-match":"all","size":5.0}`, false},   // a float is not an integer
		{`{"x-match":"all","format":null}`, true}, // presence only
		{`{"x-match":"all","missing":null}`, false},
		{`{"x-match":"all","x-trace":"off"}`, true},         // x- keys are ignored...
		{`{"x-match":"all-with-x","x-trace":"off"}`, false}, // ...unless asked for
		{`{"x-match":"any-with-x","x-trace":"on"}`, true},
		{`{"x-match":"all"}`, true},
		{`{"x-match":"any"}`, false},
	} {
		assert.Equal(t, c.want, headersMatch(args(c.args), h), c.args)
	}
}

func TestPlanFollowsAlternateExchangesAndRefusesUnknownTypes(t *testing.T) {
	x := func(name, typ string, args string) exchangeInfo {
		return exchangeInfo{Name: name, Type: typ, Arguments: json.RawMessage(args)}
	}
	b := func(src, dst, dtype, key string) bindingInfo {
		return bindingInfo{Source: src, Destination: dst, DestinationType: dtype, RoutingKey: key, Arguments: json.RawMessage("{}")}
	}
	g := &graph{
		exchanges: map[string]exchangeInfo{
			"in": x("in", "direct", "{}"), "mid": x("mid", "topic", "{}"),
			"deep": x("deep", "direct", `{"alternate-exchange":"spill"}`), "spill": x("spill", "fanout", "{}"),
			"hash": x("hash", "x-consistent-hash", "{}"),
		},
		bindings: map[string][]bindingInfo{
			"in":    {b("in", "mid", "exchange", "k"), b("in", "hash", "exchange", "h")},
			"mid":   {b("mid", "deep", "exchange", "#")},
			"spill": {b("spill", "lost-and-found", "queue", "")},
			"hash":  {b("hash", "ring", "queue", "1")},
		},
		policies: map[string]map[string]any{},
	}
	r, why := g.plan(g.bindings["in"][0], "t")
	require.Empty(t, why)
	require.NotNil(t, r.twin, "deep routes nothing, so its alternate exchange would spill into a user queue: only a twin is safe")
	assert.Contains(t, r.notInPlace, `"lost-and-found"`)
	assert.Equal(t, "direct", r.twin.Type)
	assert.Equal(t, r.twin.Name, r.catch.Source, "the probe is published to the twin")
	assert.Equal(t, "k", r.catch.RoutingKey, "the twin is bound with the binding's own key")

	r, why = g.plan(g.bindings["mid"][0], "t")
	assert.Empty(t, why)
	assert.Nil(t, r.twin, "the probe queue catches the probe at deep, so the alternate exchange is not used: exercised in place")
	assert.Equal(t, "deep", r.catch.Source, "caught at the binding's destination exchange")

	_, why = g.plan(g.bindings["in"][1], "t")
	assert.Empty(t, why, "the destination's type is unknown, but a twin of the direct source needs none")

	_, why = g.plan(g.bindings["hash"][0], "t")
	assert.Contains(t, why, "x-consistent-hash", "an exchange type warren cannot predict is skipped")

	r, why = g.plan(g.bindings["spill"][0], "t")
	assert.Empty(t, why)
	require.NotNil(t, r.twin)
	assert.Contains(t, r.notInPlace, `user queue "lost-and-found"`)
}

// labTopology has one binding of each kind: to queues (exercised on a
// twin), exchange-to-exchange bindings that can be exercised in place from
// every exchange type, and some that must not be (their probe would reach a
// user queue, directly or through an alternate exchange, or their source is
// internal), which are exercised on a twin.
var labTopology = topology{
	exchanges: [][3]string{
		{"orders", "topic", ""}, {"fan", "fanout", ""}, {"hdr", "headers", ""}, {"d", "direct", ""},
		{"router", "direct", ""}, {"sink", "topic", ""}, {"hx", "headers", ""}, {"sink2", "fanout", ""},
		{"tx", "topic", ""}, {"hsink", "headers", ""}, {"inner", "fanout", "internal"},
		{"mid", "direct", ""}, {"deep", "direct", ""}, {"fx", "fanout", ""}, {"sink3", "direct", ""},
	},
	queues: []string{"q-orders", "q-fan", "q-hdr", "q-d"},
	bindings: []bind{
		{source: "orders", dest: "q-orders", key: "order.*.created"},
		{source: "fan", dest: "q-fan"},
		{source: "hdr", dest: "q-hdr", args: amqp.Table{"x-match": "any", "format": "pdf", "size": int32(5)}},
		{source: "d", dest: "q-d", key: "k"},
		{source: "router", dest: "sink", toExchange: true, key: "r.k"},
		{source: "router", dest: "orders", toExchange: true, key: "order.eu.created"},
		{source: "hx", dest: "sink2", toExchange: true, args: amqp.Table{"x-match": "all", "kind": int32(3), "ratio": 1.5}},
		{source: "tx", dest: "hsink", toExchange: true, key: "a.#"},
		{source: "inner", dest: "sink", toExchange: true, key: "i"},
		{source: "router", dest: "mid", toExchange: true, key: "m"},
		{source: "mid", dest: "deep", toExchange: true, key: "m"},
		{source: "fx", dest: "sink3", toExchange: true},
	},
}

func bindingName(vhost string, b bind) string {
	dtype := "queue"
	if b.toExchange {
		dtype = "exchange"
	}
	raw, _ := json.Marshal(b.args)
	if b.args == nil {
		raw = []byte("{}")
	}
	return fmt.Sprintf("binding %s: %s", vhost, bindingInfo{Source: b.source, Destination: b.dest, DestinationType: dtype, RoutingKey: b.key, Arguments: raw})
}

func TestRoutingExercisesEveryBindingWithoutTouchingUserQueues(t *testing.T) {
	e := brokertest.New(t)
	ch := e.Channel(t, e.Target, 0)
	labTopology.declare(t, []*amqp.Channel{ch}, nil)
	// deep's alternate exchange comes from a policy, which the simulation
	// must read too.
	put(t, e.TargetAPI, "policies/"+e.Vhost+"/spill", map[string]any{
		"pattern": "^deep$", "apply-to": "exchanges", "definition": map[string]any{"alternate-exchange": "fan"},
	})
	o := options(t, e, AreaRouting)
	o.Source = nil
	r := run(t, o)
	require.NoError(t, r.Err())

	want := map[string]string{ // binding → why not in place; "" means exercised in place
		"orders→q-orders": `user queue "q-orders"`,
		"fan→q-fan":       `user queue "q-fan"`,
		"hdr→q-hdr":       `user queue "q-hdr"`,
		"d→q-d":           `user queue "q-d"`,
		"router→sink":     "",
		"router→orders":   `would also reach user queue(s) "q-orders"`,
		"hx→sink2":        "",
		"tx→hsink":        "",
		"inner→sink":      "internal",
		"router→mid":      `would also reach user queue(s) "q-fan"`, // through deep's alternate exchange
		"mid→deep":        "",
		"fx→sink3":        "",
	}
	require.Len(t, r.Area(AreaRouting), len(labTopology.bindings))
	for _, b := range labTopology.bindings {
		c := find(t, r, bindingName(e.Vhost, b))
		frag := want[b.source+"→"+b.dest]
		assert.Equal(t, Pass, c.Status, c.Name)
		if frag == "" {
			assert.Contains(t, c.Detail, fmt.Sprintf("through nodes %s reached", nodeList(len(e.Target.AMQP))), c.Name)
			assert.NotContains(t, c.Detail, "twin", c.Name)
		} else {
			assert.Contains(t, c.Detail, fmt.Sprintf("routes on a twin: a probe with key %q published through nodes %s", probeKey(b), nodeList(len(e.Target.AMQP))), c.Name)
			assert.Contains(t, c.Detail, frag, c.Name)
		}
	}
	// Not one probe reached a user queue, and no twin exchange is left.
	assert.Equal(t, map[string]int{"q-orders": 0, "q-fan": 0, "q-hdr": 0, "q-d": 0}, depths(t, e.Channel(t, e.Target, 1), labTopology.queues))
	var left []exchangeInfo
	require.NoError(t, e.TargetAPI.Get(context.Background(), "exchanges/"+e.Vhost, &left))
	for _, x := range left {
		assert.False(t, strings.HasPrefix(x.Name, Prefix), "left behind: %s", x.Name)
	}
}

// probeKey is the key the probe of b carries: its own, with topic wildcards
// filled in.
func probeKey(b bind) string {
	return strings.NewReplacer("*", "warren-verify", "#", "warren-verify").Replace(b.key)
}

func nodeList(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprint(i + 1)
	}
	return strings.Join(s, ",")
}

func TestMissingBindingFails(t *testing.T) {
	e := brokertest.New(t)
	labTopology.declare(t, channels(t, e, e.Source), nil)
	missing := map[string]bool{"orders→q-orders": true, "router→sink": true}
	labTopology.declare(t, channels(t, e, e.Target), func(b bind) bool { return !missing[b.source+"→"+b.dest] })

	r := run(t, options(t, e, AreaRouting))
	err := r.Err()
	require.Error(t, err)
	assert.Equal(t, len(missing), r.Failed, "only the missing bindings fail")
	for _, b := range labTopology.bindings {
		c := find(t, r, bindingName(e.Vhost, b))
		if missing[b.source+"→"+b.dest] {
			assert.Equal(t, Fail, c.Status, c.Name)
			assert.Contains(t, c.Detail, "missing on the target")
			assert.Contains(t, err.Error(), c.Name)
		} else {
			assert.NotEqual(t, Fail, c.Status, c.Name)
		}
	}
}

// A twin that does not route the probe fails the binding: here the twin is
// bound with the binding's key while the probe carries another, as if the
// target routed topic keys differently from what the binding says.
func TestTwinThatDoesNotRouteFails(t *testing.T) {
	e := brokertest.New(t)
	o := Options{Target: e.Target, Vhosts: []string{e.Vhost}, Areas: []Area{AreaRouting}, Wait: 2 * time.Second}
	s := &session{opts: o, report: &Report{}, probeID: randomID(), vhosts: o.Vhosts}
	require.NoError(t, s.opts.defaults())
	ctx := context.Background()
	conns, errs := s.conns(ctx, e.Vhost)
	defer closeAll(conns)
	require.NotEmpty(t, up(conns), errs)

	b := bindingInfo{Source: "orders", Destination: "q-orders", DestinationType: "queue", RoutingKey: "order.*.created", Arguments: json.RawMessage("{}")}
	g := &graph{exchanges: map[string]exchangeInfo{"orders": {Name: "orders", Type: "topic"}}, bindings: map[string][]bindingInfo{"orders": {b}}}
	r, why := g.plan(b, s.probeID)
	require.Empty(t, why)
	require.NotNil(t, r.twin)
	assert.Equal(t, Pass, s.exercise(ctx, conns, b, r, s.probeID).status, "the probe as planned routes")

	r.probe.key = "order.created" // one word short: "*" needs exactly one
	out := s.exercise(ctx, conns, b, r, s.probeID)
	assert.Equal(t, Fail, out.status)
	assert.Contains(t, out.detail, "does not route what this binding says")
}
