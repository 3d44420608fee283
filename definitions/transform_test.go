package definitions_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab/fixture"
)

func ids(cs []definitions.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	sort.Strings(out)
	return out
}

func TestPlanConvertsDurableClassicQueuesAndBlocksOnIncompatibleArguments(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	src := w.source(t)
	p, err := definitions.NewPlan(src, definitions.Options{})
	require.NoError(t, err)
	want := p.Want()

	incompatible := w.Topo.IncompatibleQueues()
	sort.Strings(incompatible)
	assert.Equal(t, incompatible, ids(p.Blockers()), "every queue with refused or ignored arguments, and only those, needs a decision")
	err = p.Err()
	require.Error(t, err)
	assert.Equal(t, definitions.ClassConflict, definitions.ClassOf(err))
	assert.Contains(t, err.Error(), "x-max-priority=10")
	assert.Contains(t, err.Error(), "x-overflow=reject-publish-dlx")
	assert.Contains(t, err.Error(), "--keep-classic")

	for _, q := range w.Topo.Queues {
		got := find(t, want, definitions.KindQueue, q.ID()).QueueType()
		switch {
		case q.Quorum:
			assert.Equal(t, "quorum", got, q.ID())
			assert.Empty(t, changesFor(p, definitions.KindQueue, q.ID()), "already quorum: %s", q.ID())
		case q.StaysClassic:
			assert.Equal(t, "classic", got, q.ID())
			c := changesFor(p, definitions.KindQueue, q.ID())
			require.Len(t, c, 1, q.ID())
			assert.Equal(t, definitions.ActionKeepClassic, c[0].Action)
		case len(q.Incompatible) > 0:
			assert.Equal(t, "classic", got, "%s is blocked, not converted", q.ID())
		default:
			assert.Equal(t, "quorum", got, q.ID())
			c := changesFor(p, definitions.KindQueue, q.ID())
			require.Len(t, c, 1, q.ID())
			assert.Equal(t, definitions.ActionConvert, c[0].Action)
			assert.NotEmpty(t, c[0].Reason)
		}
	}
	// Arguments other than the type survive the conversion.
	oc := find(t, want, definitions.KindQueue, w.Topo.Vhost(fixture.Shop)+"/orders.created").Arguments()
	assert.Equal(t, "orders.dlx", oc["x-dead-letter-exchange"])
	assert.Equal(t, "dead", oc["x-dead-letter-routing-key"])
	// The source is never modified.
	assert.Equal(t, "classic", find(t, src, definitions.KindQueue, w.Topo.Vhost(fixture.Shop)+"/orders.created").QueueType())

	// Converted vhosts get the default queue type quorum, so that clients
	// redeclaring without x-queue-type are not refused.
	for _, vh := range w.Topo.Vhosts {
		assert.Equal(t, "quorum", find(t, want, definitions.KindVhost, vh).Str("default_queue_type"), vh)
	}
	p2, err := definitions.NewPlan(src, definitions.Options{KeepVhostDefaultQueueType: true, Incompatible: definitions.IncompatibleKeepClassic})
	require.NoError(t, err)
	assert.Equal(t, "classic", find(t, p2.Want(), definitions.KindVhost, w.Topo.Vhost(fixture.Billing)).Str("default_queue_type"))
}

func TestPlanIncompatibleArgumentChoices(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	src := w.source(t)
	shop := w.Topo.Vhost(fixture.Shop)

	t.Run("keep classic", func(t *testing.T) {
		p, err := definitions.NewPlan(src, definitions.Options{Incompatible: definitions.IncompatibleKeepClassic})
		require.NoError(t, err)
		assert.NoError(t, p.Err())
		for _, id := range w.Topo.IncompatibleQueues() {
			q := find(t, p.Want(), definitions.KindQueue, id)
			assert.Equal(t, "classic", q.QueueType(), id)
			c := changesFor(p, definitions.KindQueue, id)
			require.Len(t, c, 1)
			assert.Equal(t, definitions.ActionKeepClassic, c[0].Action)
		}
		warn := changesFor(p, definitions.KindVhost, shop)
		var warned bool
		for _, c := range warn {
			if c.Action == definitions.ActionWarn {
				warned = true
				assert.Contains(t, c.Detail, "jobs.priority")
				assert.Contains(t, c.Reason, "x-queue-type=classic")
			}
		}
		assert.True(t, warned, "kept classic queues in a vhost that defaults to quorum must be reported")
	})

	t.Run("drop arguments", func(t *testing.T) {
		p, err := definitions.NewPlan(src, definitions.Options{Incompatible: definitions.IncompatibleDropArguments})
		require.NoError(t, err)
		assert.NoError(t, p.Err())
		capped := find(t, p.Want(), definitions.KindQueue, shop+"/jobs.capped")
		assert.Equal(t, "quorum", capped.QueueType())
		assert.NotContains(t, capped.Arguments(), "x-overflow")
		assert.Equal(t, json.Number("1000"), capped.Arguments()["x-max-length"], "compatible arguments stay")
		for _, id := range w.Topo.IncompatibleQueues() {
			c := changesFor(p, definitions.KindQueue, id)
			require.Len(t, c, 2, id)
			assert.Equal(t, definitions.ActionDropArgument, c[0].Action)
			assert.Equal(t, definitions.ActionConvert, c[1].Action)
		}
	})

	t.Run("keep one classic by name, abort on the rest", func(t *testing.T) {
		p, err := definitions.NewPlan(src, definitions.Options{KeepClassic: []string{shop + "/jobs.pri*"}})
		require.NoError(t, err)
		assert.Equal(t, []string{shop + "/jobs.capped", shop + "/jobs.lazy", shop + "/jobs.located"}, ids(p.Blockers()))
		assert.Equal(t, "classic", find(t, p.Want(), definitions.KindQueue, shop+"/jobs.priority").QueueType())
	})

	t.Run("keep every type", func(t *testing.T) {
		p, err := definitions.NewPlan(src, definitions.Options{QueueType: definitions.QueueTypeKeep})
		require.NoError(t, err)
		assert.NoError(t, p.Err())
		for _, q := range src.Objects(definitions.KindQueue) {
			assert.Equal(t, q.QueueType(), find(t, p.Want(), definitions.KindQueue, definitions.ID(definitions.KindQueue, q)).QueueType())
		}
		for _, c := range p.Changes {
			assert.NotEqual(t, definitions.KindQueue, c.Kind, "no queue changes: %+v", c)
		}
	})
}

func TestPlanMirroringPolicies(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	src := w.source(t)
	shop := w.Topo.Vhost(fixture.Shop)
	haOnly, mixed, plain := shop+"/ha-mirrored", shop+"/events-limits", shop+"/broadcast-ae"
	opts := definitions.Options{Incompatible: definitions.IncompatibleKeepClassic}

	opts.Mirroring = definitions.MirroringKeep
	p, err := definitions.NewPlan(src, opts)
	require.NoError(t, err)
	assert.Equal(t, "exactly", find(t, p.Want(), definitions.KindPolicy, haOnly).Map("definition")["ha-mode"])
	for _, id := range []string{haOnly, mixed} {
		c := changesFor(p, definitions.KindPolicy, id)
		require.Len(t, c, 1, id)
		assert.Equal(t, definitions.ActionWarn, c[0].Action, "mirroring is reported even when kept")
	}
	assert.Empty(t, changesFor(p, definitions.KindPolicy, plain))

	opts.Mirroring = definitions.MirroringRewrite
	p, err = definitions.NewPlan(src, opts)
	require.NoError(t, err)
	_, ok := p.Want().Find(definitions.KindPolicy, haOnly)
	assert.False(t, ok, "a policy with nothing but ha-* keys is dropped")
	def := find(t, p.Want(), definitions.KindPolicy, mixed).Map("definition")
	assert.Equal(t, map[string]any{"message-ttl": json.Number("86400000"), "max-length": json.Number("50000")}, def)
	assert.Equal(t, definitions.ActionRewrite, changesFor(p, definitions.KindPolicy, mixed)[0].Action)
	find(t, p.Want(), definitions.KindPolicy, plain)

	opts.Mirroring = definitions.MirroringDrop
	p, err = definitions.NewPlan(src, opts)
	require.NoError(t, err)
	for _, id := range []string{haOnly, mixed} {
		_, ok := p.Want().Find(definitions.KindPolicy, id)
		assert.False(t, ok, id)
	}
	find(t, p.Want(), definitions.KindPolicy, plain)
}

func TestPlanNeverCarriesIdentityAndLeavesGuestUnlessAsked(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	all, err := definitions.Export(w.Ctx, w.SourceAPI)
	require.NoError(t, err)
	find(t, all, definitions.KindGlobalParameter, "cluster_name")
	find(t, all, definitions.KindUser, "guest")
	// Apply granted guest (the source's API user) permissions on the
	// fixture's vhosts.
	guestPerm := w.Topo.Vhost(fixture.Shop) + "/guest"
	find(t, all, definitions.KindPermission, guestPerm)

	opts := definitions.Options{QueueType: definitions.QueueTypeKeep}
	p, err := definitions.NewPlan(all, opts)
	require.NoError(t, err)
	for _, name := range []string{"cluster_name", "internal_cluster_id"} {
		_, ok := p.Want().Find(definitions.KindGlobalParameter, name)
		assert.False(t, ok, name)
		c := changesFor(p, definitions.KindGlobalParameter, name)
		require.Len(t, c, 1)
		assert.Equal(t, definitions.ActionDrop, c[0].Action)
	}
	_, ok := p.Want().Find(definitions.KindUser, "guest")
	assert.False(t, ok)
	_, ok = p.Want().Find(definitions.KindPermission, guestPerm)
	assert.False(t, ok, "guest's permissions go with guest")

	opts.IncludeGuest = true
	p, err = definitions.NewPlan(all, opts)
	require.NoError(t, err)
	find(t, p.Want(), definitions.KindUser, "guest")
	find(t, p.Want(), definitions.KindPermission, guestPerm)
	_, ok = p.Want().Find(definitions.KindGlobalParameter, "cluster_name")
	assert.False(t, ok, "identity is never imported, whatever the options")
}

func TestPlanRejectsUnknownChoices(t *testing.T) {
	t.Parallel()
	d := definitions.New()
	for _, o := range []definitions.Options{
		{QueueType: "stream"},
		{Incompatible: "ignore"},
		{Mirroring: "translate"},
		{KeepClassic: []string{"no-slash"}},
		{KeepClassic: []string{"vh/[bad"}},
	} {
		_, err := definitions.NewPlan(d, o)
		require.Error(t, err, "%+v", o)
		assert.Equal(t, definitions.ClassUsage, definitions.ClassOf(err), "%+v: %v", o, err)
	}
	_, err := definitions.NewPlan(d, definitions.Options{QueueType: "stream"})
	assert.ErrorContains(t, err, `unknown queue type "stream"`)
}

// TestQuorumRefusesIncompatibleArguments checks warren's list of arguments
// that need a decision against the real target: the broker must refuse
// each of them for a quorum queue (except reject-publish-dlx, which 3.10
// accepts and silently ignores), and accept the arguments warren keeps.
func TestQuorumRefusesIncompatibleArguments(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	declare := func(name string, args map[string]any) error {
		args["x-queue-type"] = "quorum"
		return e.TargetAPI.Do(t.Context(), http.MethodPut, "queues/"+broker.PathEscape(e.Vhost)+"/"+name,
			map[string]any{"durable": true, "arguments": args}, nil)
	}
	refused := map[string]any{
		"x-max-priority": 10, "x-queue-mode": "lazy", "x-queue-master-locator": "min-masters",
		"x-queue-version": 2, "x-max-age": "1D",
	}
	for arg, v := range refused {
		err := declare("refused-"+arg, map[string]any{arg: v})
		var se *broker.StatusError
		if assert.ErrorAs(t, err, &se, arg) {
			assert.Equal(t, http.StatusBadRequest, se.Status, arg)
			assert.Contains(t, se.Body, arg)
		}
	}
	accepted := map[string]any{
		"x-message-ttl": 1000, "x-expires": 100000, "x-max-length": 10, "x-max-length-bytes": 1000,
		"x-overflow": "reject-publish", "x-dead-letter-exchange": "dlx", "x-single-active-consumer": true,
		"x-delivery-limit": 5,
	}
	for arg, v := range accepted {
		assert.NoError(t, declare("accepted-"+arg, map[string]any{arg: v}), arg)
	}
	// Accepted, but the broker logs "Invalid overflow strategy" and uses
	// drop-head: the plan flags it all the same.
	assert.NoError(t, declare("dlx-overflow", map[string]any{"x-overflow": "reject-publish-dlx"}))
}
