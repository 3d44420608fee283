package definitions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/lab/fixture"
)

// queueTypes reads the live type of every queue in vhost on the target.
func queueTypes(t *testing.T, w *world, vhost string) map[string]string {
	t.Helper()
	var qs []struct {
		Name, Type string
	}
	require.NoError(t, w.TargetAPI.Get(w.Ctx, "queues/"+broker.PathEscape(vhost)+"?columns=name,type", &qs))
	out := map[string]string{}
	for _, q := range qs {
		out[q.Name] = q.Type
	}
	return out
}

func TestImportRoundTripKeepsEveryFieldAndSecondImportChangesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	src := w.source(t)
	// Keep every type and policy: the target must then hold exactly what
	// the source holds, field for field, runtime parameters included.
	p, err := definitions.NewPlan(src, definitions.Options{QueueType: definitions.QueueTypeKeep})
	require.NoError(t, err)

	res, err := definitions.Import(w.Ctx, w.TargetAPI, p)
	require.NoError(t, err)
	assert.Equal(t, p.Want().Len(), res.Total(), "every planned object is new on the target")
	assert.Equal(t, p.Want().Len(), res.Confirmed)
	assert.Zero(t, res.Identical)
	assert.Equal(t, w.Topo.Parameters, res.Created[definitions.KindParameter])

	got := w.target(t)
	assert.Empty(t, definitions.Compare(p.Want(), got), "the target holds every planned object, every field equal")
	// Users: password hashes moved, so the fixture password works on the target.
	app := w.Target
	app.APIUser, app.APIPassword = w.Vhost+"-admin", fixture.Password
	appAPI, err := app.NewAPI()
	require.NoError(t, err)
	var who map[string]any
	require.NoError(t, appAPI.Get(w.Ctx, "whoami", &who), "the imported user logs in with its source password")

	again, err := definitions.Import(w.Ctx, w.TargetAPI, p)
	require.NoError(t, err)
	assert.Zero(t, again.Total(), "a second import creates nothing")
	assert.Equal(t, p.Want().Len(), again.Identical)
	assert.Equal(t, p.Want().Len(), again.Check.Count(definitions.StatusIdentical))
}

func TestImportConvertsToQuorum(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	src := w.source(t)
	p, err := definitions.NewPlan(src, definitions.Options{Incompatible: definitions.IncompatibleKeepClassic, Mirroring: definitions.MirroringRewrite})
	require.NoError(t, err)
	res, err := definitions.Import(w.Ctx, w.TargetAPI, p)
	require.NoError(t, err)
	assert.Equal(t, p.Want().Len(), res.Confirmed)

	shop := w.Topo.Vhost(fixture.Shop)
	types := queueTypes(t, w, shop)
	assert.Equal(t, "quorum", types["orders.created"])
	assert.Equal(t, "quorum", types["events.all"])
	assert.Equal(t, "classic", types["jobs.priority"])
	assert.Equal(t, "classic", types["cache.transient"])
	assert.Equal(t, "classic", types["cache.autodelete"])

	// Clients that redeclare a converted queue without x-queue-type are not
	// refused, because the vhost's default queue type is now quorum.
	conn, err := w.Target.Dial(w.Ctx, shop)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("orders.dead", true, false, false, false, nil)
	assert.NoError(t, err)

	assert.Empty(t, definitions.Compare(p.Want(), w.target(t)))
	again, err := definitions.Import(w.Ctx, w.TargetAPI, p)
	require.NoError(t, err)
	assert.Zero(t, again.Total())
}

func TestImportSingleVhostFileIntoNamedVhost(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	shop := w.Topo.Vhost(fixture.Shop)
	var raw json.RawMessage
	require.NoError(t, w.SourceAPI.Get(w.Ctx, "definitions/"+broker.PathEscape(shop), &raw))
	mapped := w.Vhost + "-mapped"
	t.Cleanup(func() {
		_ = w.TargetAPI.Do(context.Background(), http.MethodDelete, "vhosts/"+broker.PathEscape(mapped), nil, nil)
	})
	d, err := definitions.Load(bytes.NewReader(raw), mapped)
	require.NoError(t, err)
	p, err := definitions.NewPlan(d, definitions.Options{Incompatible: definitions.IncompatibleDropArguments})
	require.NoError(t, err)
	_, err = definitions.Import(w.Ctx, w.TargetAPI, p)
	require.NoError(t, err)
	types := queueTypes(t, w, mapped)
	assert.Len(t, types, len(shopQueues(w.Topo)))
	assert.Equal(t, "quorum", types["jobs.priority"], "its x-max-priority was dropped")
}

func TestImportStopsBeforeChangingAnything(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	src := w.source(t)

	// Incompatible arguments without a decision.
	p, err := definitions.NewPlan(src, definitions.Options{})
	require.NoError(t, err)
	res, err := definitions.Import(w.Ctx, w.TargetAPI, p)
	require.Error(t, err)
	assert.Equal(t, definitions.ClassConflict, definitions.ClassOf(err))
	assert.Zero(t, res.Total())
	assert.Zero(t, w.target(t).Len(), "nothing of the fixture reached the target")
}

func TestCheckFindsConflictsAndImportLeavesThemAlone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	src := w.source(t)
	shop := w.Topo.Vhost(fixture.Shop)
	esc := broker.PathEscape
	tgt := w.TargetAPI
	do := func(method, path string, body any) {
		t.Helper()
		require.NoError(t, tgt.Do(w.Ctx, method, path, body, nil))
	}
	// The target already holds some objects, differently.
	do(http.MethodPut, "vhosts/"+esc(shop), map[string]any{"description": "warren fixture: web shop", "tags": "fixture,shop", "defaultqueuetype": "quorum"})
	do(http.MethodPut, "queues/"+esc(shop)+"/orders.created", map[string]any{"durable": true, "arguments": map[string]any{"x-queue-type": "classic"}})
	do(http.MethodPut, "queues/"+esc(shop)+"/orders.dead", map[string]any{"durable": true, "arguments": map[string]any{"x-queue-type": "quorum"}})
	do(http.MethodPut, "exchanges/"+esc(shop)+"/events", map[string]any{"type": "fanout", "durable": true})
	do(http.MethodPut, "users/"+esc(w.Vhost+"-app"), map[string]any{"password": "another", "tags": "management"})
	do(http.MethodPut, "policies/"+esc(shop)+"/broadcast-ae", map[string]any{"pattern": "^broadcast$", "apply-to": "exchanges", "definition": map[string]any{"alternate-exchange": "elsewhere"}})
	do(http.MethodPut, "permissions/"+esc(shop)+"/"+esc(w.Vhost+"-app"), map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	before := w.target(t)

	p, err := definitions.NewPlan(src, definitions.Options{Incompatible: definitions.IncompatibleKeepClassic})
	require.NoError(t, err)
	r, err := p.Check(w.Ctx, tgt)
	require.Error(t, err)
	assert.Equal(t, definitions.ClassConflict, definitions.ClassOf(err))
	require.NotNil(t, r)
	conflicts := map[string]definitions.ObjectStatus{}
	for _, o := range r.Objects {
		if o.Status == definitions.StatusConflict {
			conflicts[string(o.Kind)+" "+o.ID] = o
		}
	}
	wantConflicts := []string{
		"queue " + shop + "/orders.created", // a classic queue where a quorum queue is planned
		"exchange " + shop + "/events",      // fanout instead of topic
		"user " + w.Vhost + "-app",          // another password hash and tags
		"policy " + shop + "/broadcast-ae",  // another definition
		"permission " + shop + "/" + w.Vhost + "-app",
	}
	for _, id := range wantConflicts {
		assert.Contains(t, conflicts, id)
	}
	assert.Len(t, conflicts, len(wantConflicts), "%v", conflicts)
	assert.Equal(t, "arguments", conflicts["queue "+shop+"/orders.created"].Fields[0].Field)
	assert.Contains(t, err.Error(), "--skip-conflicts")
	statusOf := func(kind definitions.Kind, id string) definitions.Status {
		for _, o := range r.Objects {
			if o.Kind == kind && o.ID == id {
				return o.Status
			}
		}
		return ""
	}
	assert.Equal(t, definitions.StatusIdentical, statusOf(definitions.KindQueue, shop+"/orders.dead"))
	assert.Equal(t, definitions.StatusIdentical, statusOf(definitions.KindVhost, shop))
	assert.Equal(t, definitions.StatusNew, statusOf(definitions.KindQueue, shop+"/events.all"))

	_, err = definitions.Import(w.Ctx, tgt, p)
	require.Error(t, err)
	assert.Equal(t, definitions.ClassConflict, definitions.ClassOf(err))
	assert.Empty(t, definitions.Compare(before, w.target(t)), "a refused import changes nothing")

	// Skipping conflicts imports the rest and leaves the conflicting objects
	// as the target has them.
	p.Options.SkipConflicts = true
	res, err := definitions.Import(w.Ctx, tgt, p)
	require.NoError(t, err)
	assert.Equal(t, len(wantConflicts), res.Skipped)
	got := w.target(t)
	assert.Equal(t, "fanout", find(t, got, definitions.KindExchange, shop+"/events").Str("type"))
	assert.Equal(t, "classic", find(t, got, definitions.KindQueue, shop+"/orders.created").QueueType())
	find(t, got, definitions.KindQueue, shop+"/events.all")
	var differs []string
	for _, d := range definitions.Compare(p.Want(), got) {
		differs = append(differs, string(d.Kind)+" "+d.ID)
	}
	assert.ElementsMatch(t, wantConflicts, differs, "only the skipped conflicts differ from the plan")
}

func TestCheckPreflight(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	shop := w.Topo.Vhost(fixture.Shop)
	var raw json.RawMessage
	require.NoError(t, w.SourceAPI.Get(w.Ctx, "definitions/"+broker.PathEscape(shop), &raw))
	vhost := w.Vhost + "-pre"

	// A file written by a newer broker, with an exchange of a plugin the
	// target lacks (the lab has federation and shovel, not consistent hash).
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	doc["rabbit_version"] = "3.13.7"
	doc["exchanges"] = append(doc["exchanges"].([]any), map[string]any{
		"name": "sharded", "type": "x-consistent-hash", "durable": true, "auto_delete": false, "internal": false, "arguments": map[string]any{}})
	file, err := json.Marshal(doc)
	require.NoError(t, err)
	d, err := definitions.Load(bytes.NewReader(file), vhost)
	require.NoError(t, err)
	p, err := definitions.NewPlan(d, definitions.Options{QueueType: definitions.QueueTypeKeep})
	require.NoError(t, err)

	r, err := p.Check(w.Ctx, w.TargetAPI)
	require.Error(t, err)
	assert.Equal(t, definitions.ClassPreflight, definitions.ClassOf(err))
	assert.Contains(t, err.Error(), "older than the source's 3.13.7")
	assert.Contains(t, err.Error(), "rabbitmq_consistent_hash_exchange")
	assert.Contains(t, err.Error(), vhost+"/sharded")
	var failed []string
	for _, f := range r.Preflight {
		if !f.OK {
			failed = append(failed, f.Check)
		}
	}
	assert.ElementsMatch(t, []string{"version", "plugins"}, failed)
	_, err = definitions.Import(w.Ctx, w.TargetAPI, p)
	assert.Equal(t, definitions.ClassPreflight, definitions.ClassOf(err))
	var list []map[string]any
	require.NoError(t, w.TargetAPI.Get(w.Ctx, "vhosts", &list))
	for _, v := range list {
		assert.NotEqual(t, vhost, v["name"], "a failed preflight changes nothing")
	}

	// The federation upstream needs rabbitmq_federation, which the target
	// runs: no finding about it.
	assert.NotContains(t, err.Error(), "rabbitmq_federation")

	// A target login without the administrator tag cannot import.
	user := w.Vhost + "-mgmt"
	require.NoError(t, w.TargetAPI.Do(w.Ctx, http.MethodPut, "users/"+broker.PathEscape(user), map[string]any{"password": "pw", "tags": "management"}, nil))
	t.Cleanup(func() {
		_ = w.TargetAPI.Do(context.Background(), http.MethodDelete, "users/"+broker.PathEscape(user), nil, nil)
	})
	ep := w.Target
	ep.APIUser, ep.APIPassword = user, "pw"
	weak, err := ep.NewAPI()
	require.NoError(t, err)
	p2, err := definitions.NewPlan(w.source(t), definitions.Options{QueueType: definitions.QueueTypeKeep})
	require.NoError(t, err)
	_, err = p2.Check(w.Ctx, weak)
	require.Error(t, err)
	assert.Equal(t, definitions.ClassPreflight, definitions.ClassOf(err))
	assert.True(t, strings.Contains(err.Error(), "administrator"), err.Error())
}

func TestCheckVhostDefaultQueueTypeOfExistingVhost(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	billing := w.Topo.Vhost(fixture.Billing)
	// The target already has the vhost, without a default queue type,
	// which an import cannot change, and with another description, which
	// changes nothing.
	require.NoError(t, w.TargetAPI.Do(w.Ctx, http.MethodPut, "vhosts/"+broker.PathEscape(billing),
		map[string]any{"description": "billing, described otherwise", "tags": "fixture"}, nil))
	src := w.source(t).Only(billing)

	p, err := definitions.NewPlan(src, definitions.Options{})
	require.NoError(t, err)
	_, err = p.Check(w.Ctx, w.TargetAPI)
	require.Error(t, err)
	assert.Equal(t, definitions.ClassConflict, definitions.ClassOf(err))
	assert.Contains(t, err.Error(), `default_queue_type: want "quorum", got "classic"`)
	assert.Contains(t, err.Error(), "--keep-vhost-default-queue-type")

	// Left alone, the source's explicit "classic" equals the target's none.
	p, err = definitions.NewPlan(src, definitions.Options{KeepVhostDefaultQueueType: true})
	require.NoError(t, err)
	r, err := p.Check(w.Ctx, w.TargetAPI)
	require.NoError(t, err)
	assert.Equal(t, 1, r.Count(definitions.StatusIdentical), "the vhost")
	require.Equal(t, definitions.KindVhost, r.Objects[0].Kind)
	assert.Equal(t, "description", r.Objects[0].Fields[0].Field, "the cosmetic difference is still shown")
	_, err = definitions.Import(w.Ctx, w.TargetAPI, p)
	require.NoError(t, err)
}
