package definitions_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/lab/fixture"
)

func TestLoadSingleVhostExportMapsOntoNamedVhost(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	shop := w.Topo.Vhost(fixture.Shop)
	var raw json.RawMessage
	require.NoError(t, w.SourceAPI.Get(w.Ctx, "definitions/"+broker.PathEscape(shop), &raw))

	_, err := definitions.Load(bytes.NewReader(raw), "")
	require.Error(t, err)
	assert.Equal(t, definitions.ClassUsage, definitions.ClassOf(err))
	assert.Contains(t, err.Error(), "single-vhost")
	assert.Contains(t, err.Error(), "--vhost")

	mapped := w.Vhost + "-mapped"
	d, err := definitions.Load(bytes.NewReader(raw), mapped)
	require.NoError(t, err)
	v := find(t, d, definitions.KindVhost, mapped)
	assert.Equal(t, mapped, v.Name())
	for _, k := range []definitions.Kind{definitions.KindQueue, definitions.KindExchange, definitions.KindBinding, definitions.KindPolicy, definitions.KindParameter} {
		require.NotEmpty(t, d.Objects(k), k)
		for _, o := range d.Objects(k) {
			assert.Equal(t, mapped, o.Vhost(), "%s %s", k, definitions.ID(k, o))
		}
	}
	find(t, d, definitions.KindParameter, mapped+"/federation-upstream/remote-dc")
	assert.Len(t, d.Objects(definitions.KindQueue), len(shopQueues(w.Topo)))

	p, err := definitions.NewPlan(d, definitions.Options{QueueType: definitions.QueueTypeKeep})
	require.NoError(t, err)
	c := changesFor(p, definitions.KindVhost, mapped)
	require.Len(t, c, 1)
	assert.Equal(t, definitions.ActionMapVhost, c[0].Action)
	assert.Contains(t, c[0].Detail, shop, "the plan says where the file came from")
}

func shopQueues(topo *fixture.Topology) []fixture.Queue {
	var out []fixture.Queue
	for _, q := range topo.Queues {
		if q.Vhost == topo.Vhost(fixture.Shop) {
			out = append(out, q)
		}
	}
	return out
}

func TestLoadWholeExportWithVhostKeepsOnlyIt(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var raw json.RawMessage
	require.NoError(t, w.SourceAPI.Get(w.Ctx, "definitions", &raw))
	billing := w.Topo.Vhost(fixture.Billing)

	d, err := definitions.Load(bytes.NewReader(raw), billing)
	require.NoError(t, err)
	require.Len(t, d.Objects(definitions.KindVhost), 1)
	for _, q := range d.Objects(definitions.KindQueue) {
		assert.Equal(t, billing, q.Vhost())
	}
	assert.Len(t, d.Objects(definitions.KindQueue), 3)

	_, err = definitions.Load(bytes.NewReader(raw), "no-such-vhost")
	assert.Equal(t, definitions.ClassUsage, definitions.ClassOf(err))
	assert.ErrorContains(t, err, `no vhost "no-such-vhost"`)

	all, err := definitions.Load(bytes.NewReader(raw), "")
	require.NoError(t, err)
	find(t, all, definitions.KindQueue, billing+"/invoices.paid")
	find(t, all, definitions.KindGlobalParameter, "cluster_name")
}

func TestLoadRejectsMalformedFiles(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var raw json.RawMessage
	require.NoError(t, w.SourceAPI.Get(w.Ctx, "definitions", &raw))

	cases := []struct {
		name, file, want string
	}{
		{"empty", "", "empty"},
		{"blank", " \n ", "empty"},
		{"truncated export", string(raw[:len(raw)/2]), "truncated"},
		{"cut after the opening brace", "{", "truncated"},
		{"not JSON", "vhosts: [a, b]", "not valid JSON"},
		{"a JSON array", `[{"name":"q"}]`, "want a JSON object"},
		{"a JSON string", `"definitions"`, "want a JSON object"},
		{"unrelated JSON", `{"apiVersion":"v1","kind":"Pod"}`, "not a RabbitMQ definitions file"},
		{"section of the wrong type", `{"rabbit_version":"3.10.8","queues":{"name":"q"}}`, `section "queues"`},
		{"entry of the wrong type", `{"rabbit_version":"3.10.8","queues":["q"]}`, `section "queues"`},
		{"queue without a name", `{"rabbit_version":"3.10.8","queues":[{"vhost":"/","durable":true}]}`, `queues #1`},
		{"binding to a bad destination type", `{"bindings":[{"vhost":"/","source":"x","destination":"q","destination_type":"topic"}]}`, "neither queue nor exchange"},
		{"arguments not an object", `{"queues":[{"vhost":"/","name":"q","arguments":[1]}]}`, `"arguments" must be an object`},
		{"trailing data", `{"rabbit_version":"3.10.8","queues":[]} {"x":1}`, "data after its JSON document"},
		{"syntax error with position", "{\n  \"queues\": [\n    {\"name\": \"q\",, }\n  ]\n}", "line 3"},
	}
	for _, c := range cases {
		_, err := definitions.Load(strings.NewReader(c.file), "")
		if !assert.Error(t, err, c.name) {
			continue
		}
		assert.Equal(t, definitions.ClassUsage, definitions.ClassOf(err), "%s: %v", c.name, err)
		assert.Contains(t, err.Error(), c.want, c.name)
	}
}
