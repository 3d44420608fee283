package definitions_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	rabbithole "github.com/michaelklishin/rabbit-hole/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/lab/fixture"
)

func TestExportReadsEveryKindOfDefinition(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	d := w.source(t)
	shop, billing := w.Topo.Vhost(fixture.Shop), w.Topo.Vhost(fixture.Billing)

	// Vhost metadata comes from /api/vhosts: 3.10's export leaves it out.
	v := find(t, d, definitions.KindVhost, billing)
	assert.Equal(t, "warren fixture: billing", v.Str("description"))
	assert.Equal(t, []string{"fixture"}, v.Tags())
	assert.Equal(t, "classic", v.Str("default_queue_type"))
	assert.Equal(t, []string{"fixture", "shop"}, find(t, d, definitions.KindVhost, shop).Tags())

	for _, u := range w.Topo.Users {
		o := find(t, d, definitions.KindUser, u.Name)
		assert.NotEmpty(t, o.Str("password_hash"), "user %s keeps its password hash", u.Name)
		assert.Equal(t, "rabbit_password_hashing_sha256", o.Str("hashing_algorithm"))
	}
	assert.Equal(t, []string{"monitoring", "policymaker"}, find(t, d, definitions.KindUser, w.Vhost+"-ops").Tags())
	assert.Equal(t, map[string]any{"max-connections": json.Number("10"), "max-channels": json.Number("20")},
		find(t, d, definitions.KindUser, w.Vhost+"-reader").Map("limits"))

	assert.Len(t, d.Objects(definitions.KindQueue), len(w.Topo.Queues))
	assert.Len(t, d.Objects(definitions.KindExchange), w.Topo.Exchanges)
	assert.Len(t, d.Objects(definitions.KindPolicy), w.Topo.Policies)
	assert.Len(t, d.Objects(definitions.KindTopicPermission), w.Topo.TopicPermissions)
	assert.Len(t, d.Objects(definitions.KindPermission), w.Topo.Permissions)
	assert.Len(t, d.Objects(definitions.KindParameter), w.Topo.Parameters)

	// Runtime parameters: federation upstream, vhost limits, operator policy.
	up := find(t, d, definitions.KindParameter, shop+"/federation-upstream/remote-dc")
	assert.Equal(t, "on-confirm", up.Map("value")["ack-mode"])
	lim := find(t, d, definitions.KindParameter, shop+"/vhost-limits/limits")
	assert.Equal(t, json.Number("500"), lim.Map("value")["max-connections"])
	find(t, d, definitions.KindParameter, shop+"/operator_policy/op-cap")

	q := find(t, d, definitions.KindQueue, shop+"/jobs.priority")
	assert.Equal(t, json.Number("10"), q.Arguments()["x-max-priority"])
	assert.Equal(t, "quorum", find(t, d, definitions.KindQueue, billing+"/invoices.pending").QueueType())
	assert.Equal(t, "classic", find(t, d, definitions.KindQueue, billing+"/invoices.paid").QueueType())
	assert.True(t, find(t, d, definitions.KindExchange, shop+"/audit").Bool("internal"))
	find(t, d, definitions.KindBinding, shop+"/events→exchange audit key #")
	find(t, d, definitions.KindBinding, shop+`/match→queue match.pdf args {"format":"pdf","type":"report","x-match":"all"}`)
}

// rabbit-hole's ExportedDefinitions tags Parameters "paramaters": decoding an
// export with it drops every runtime parameter. This test shows the trap is
// real and that ours keeps them.
func TestExportKeepsWhatRabbitHoleDrops(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var raw json.RawMessage
	require.NoError(t, w.SourceAPI.Get(w.Ctx, "definitions", &raw))

	var rh rabbithole.ExportedDefinitions
	require.NoError(t, json.Unmarshal(raw, &rh))
	ours := definitions.New()
	require.NoError(t, json.Unmarshal(raw, ours))

	count := 0
	for _, p := range ours.Objects(definitions.KindParameter) {
		if p.Vhost() == w.Topo.Vhost(fixture.Shop) || p.Vhost() == w.Topo.Vhost(fixture.Billing) {
			count++
		}
	}
	assert.Equal(t, w.Topo.Parameters, count)
	if rh.Parameters != nil {
		assert.Empty(t, *rh.Parameters, "rabbit-hole fixed its tag: its type may be usable again")
	}

	// And every field of every object survives encode/decode unchanged.
	out, err := json.Marshal(ours)
	require.NoError(t, err)
	again := definitions.New()
	require.NoError(t, json.Unmarshal(out, again))
	assert.Empty(t, definitions.Compare(ours, again))
	var a, b map[string]any
	require.NoError(t, json.Unmarshal(raw, &a))
	require.NoError(t, json.Unmarshal(out, &b))
	assert.Equal(t, a, b, "encoding must keep every field the broker wrote")
}

func TestExportLeavesOutExclusiveQueues(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	shop := w.Topo.Vhost(fixture.Shop)
	conn, err := w.Source.Dial(w.Ctx, shop)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("session.replies", false, false, true, false, nil)
	require.NoError(t, err)

	d := w.source(t)
	_, ok := d.Find(definitions.KindQueue, shop+"/session.replies")
	assert.False(t, ok, "an exclusive queue belongs to its connection: the client declares it again on the target")
	find(t, d, definitions.KindQueue, shop+"/cache.transient")
}

func TestExportExplainsBadEndpoints(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := w.Ctx
	lst, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := lst.Addr().String()
	lst.Close()

	web := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		_, _ = rw.Write([]byte("<html><body>It works!</body></html>"))
	}))
	defer web.Close()

	src := w.Source
	amqpPort := src.AMQP[0].Port
	cases := []struct {
		name, api, user, password, want string
	}{
		{"wrong password", src.API, src.APIUser, "not-the-password", "refused the login"},
		{"unreachable", "http://" + closed, src.APIUser, src.APIPassword, "unreachable"},
		{"not RabbitMQ", web.URL, src.APIUser, src.APIPassword, "is this a RabbitMQ management API"},
		{"AMQP port instead of HTTP", "http://127.0.0.1:" + strconv.Itoa(amqpPort), src.APIUser, src.APIPassword, "unreachable"},
	}
	for _, c := range cases {
		ep := src
		ep.API, ep.APIUser, ep.APIPassword = c.api, c.user, c.password
		api, err := ep.NewAPI()
		require.NoError(t, err)
		_, err = definitions.Export(ctx, api)
		require.Error(t, err, c.name)
		assert.Equal(t, definitions.ClassPreflight, definitions.ClassOf(err), "%s: %v", c.name, err)
		assert.Contains(t, err.Error(), c.want, c.name)
		assert.NotContains(t, err.Error(), c.password, "%s: never print a password", c.name)
	}
}
