package migrate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/internal/jsonfile"
	"github.com/warrenmq/warren/lab/fixture"
	"github.com/warrenmq/warren/migrate"
	"github.com/warrenmq/warren/preflight"
	"github.com/warrenmq/warren/verify"
)

// seed builds the rich fixture on the source with a backlog, and removes
// it from both sides afterwards.
func seed(t *testing.T, e *brokertest.Env, perQueue int) (*fixture.Topology, *fixture.Backlog) {
	t.Helper()
	ctx := context.Background()
	prefix := brokertest.VhostName(t)
	t.Cleanup(func() {
		assert.NoError(t, fixture.Remove(context.Background(), e.SourceAPI, prefix))
		assert.NoError(t, fixture.Remove(context.Background(), e.TargetAPI, prefix))
	})
	topo, err := fixture.Apply(ctx, e.SourceAPI, prefix)
	require.NoError(t, err)
	backlog, err := topo.PublishBacklog(ctx, e.Source, perQueue)
	require.NoError(t, err)
	return topo, backlog
}

func options(e *brokertest.Env, topo *fixture.Topology) migrate.Options {
	o := migrate.Options{Source: e.Source, Target: e.Target, Vhosts: topo.Vhosts}
	o.Plan.Incompatible = definitions.IncompatibleKeepClassic
	o.Drain.StatePath = ""
	return o
}

func phases(s *migrate.Summary) map[migrate.Phase]string {
	out := map[migrate.Phase]string{}
	for _, p := range s.Phases {
		out[p.Phase] = p.Status
	}
	return out
}

func TestMigrateEndToEndTwice(t *testing.T) {
	e := brokertest.New(t)
	topo, backlog := seed(t, e, 25)
	opts := options(e, topo)
	dir := t.TempDir()
	opts.Drain.StatePath, opts.StatePath = dir+"/drain.json", dir+"/migrate.json"
	ctx := context.Background()

	sum, err := migrate.Run(ctx, opts)
	if sum.Verify != nil {
		for _, c := range sum.Verify.Failures() {
			t.Logf("verify failure: %+v", c)
		}
	}
	require.NoError(t, err, "phases: %+v", sum.Phases)
	for _, p := range []migrate.Phase{migrate.Preflight, migrate.Definitions, migrate.Drain, migrate.Verify, migrate.Cleanup} {
		assert.Equal(t, "ok", phases(sum)[p], p)
	}
	require.NotNil(t, sum.Drain)
	want := backlog.Count()
	drained := 0
	for _, q := range sum.Drain.Queues {
		assert.True(t, q.Conserved(), "%s/%s: %+v", q.Vhost, q.Queue, q)
		drained += q.Moved
	}
	total := 0
	for _, n := range want {
		total += n
	}
	assert.Equal(t, total, drained, "every backlog message moved")
	require.NotNil(t, sum.Verify)
	assert.True(t, sum.Verify.OK())
	assert.NotEmpty(t, sum.Verify.Area(verify.AreaConservation), "conservation was checked")
	assert.Equal(t, total, sum.Preflight.BacklogMessages)

	// The state keeps exactly what the drain deleted from the source: the
	// auto-delete queue and the bindings into it, nothing else.
	var state struct {
		Deleted struct {
			Queues   []map[string]any `json:"queues"`
			Bindings []map[string]any `json:"bindings"`
		} `json:"deleted_by_drain"`
	}
	found, err := jsonfile.Read(opts.StatePath, &state)
	require.NoError(t, err)
	require.True(t, found)
	var gone []string
	for _, q := range sum.Drain.Queues {
		if q.SourceDeleted {
			gone = append(gone, q.Queue)
		}
	}
	require.NotEmpty(t, gone, "the fixture's auto-delete queue goes with its shovel")
	require.Len(t, state.Deleted.Queues, len(gone))
	for _, q := range state.Deleted.Queues {
		assert.Contains(t, gone, q["name"])
	}
	for _, b := range state.Deleted.Bindings {
		assert.Contains(t, gone, b["destination"])
	}

	// Run it again: definitions all identical, nothing to drain, still verified.
	again, err := migrate.Run(ctx, opts)
	require.NoError(t, err, "phases: %+v", again.Phases)
	require.NotNil(t, again.Import)
	for kind, n := range again.Import.Created {
		assert.Zero(t, n, "a second import creates no %s", kind)
	}
	assert.Positive(t, again.Import.Identical)
	assert.Empty(t, again.Drain.Queues)
}

func TestMigrateDryRunChangesNothing(t *testing.T) {
	e := brokertest.New(t)
	topo, backlog := seed(t, e, 3)
	opts := options(e, topo)
	opts.DryRun = true
	counts := backlog.Count()
	bodies := map[string]int64{}
	var total int64
	for _, m := range backlog.Messages {
		bodies[m.Vhost+"/"+m.Queue] += int64(len(m.Publishing.Body))
		total += int64(len(m.Publishing.Body))
	}

	// Run right after the backlog was published, before the HTTP API's
	// statistics have caught up: preflight counts every message now, and
	// sizes each queue as well as the API allows, saying how.
	sum, err := migrate.Run(context.Background(), opts)
	require.NoError(t, err)
	assert.Equal(t, "ok", phases(sum)[migrate.Definitions])
	assert.Equal(t, "skipped", phases(sum)[migrate.Drain])
	require.NotEmpty(t, sum.Backlog)
	assert.Equal(t, len(backlog.Messages), sum.Preflight.BacklogMessages)
	estimated := 0
	for _, q := range sum.Backlog {
		id := q.Vhost + "/" + q.Queue
		assert.Equal(t, counts[id], q.Messages, "%s counted now", id)
		switch q.Size {
		case migrate.SizeCounted:
			assert.Equal(t, bodies[id], q.Bytes, "%s sized by the API", id)
		case migrate.SizeScaled, migrate.SizeEstimated:
			assert.Positive(t, q.Bytes, id)
		case migrate.SizeUnknown:
			assert.Zero(t, q.Bytes, id)
		default:
			t.Errorf("%s: size %q", id, q.Size)
		}
		if q.Size == migrate.SizeEstimated {
			estimated += q.Messages
		}
	}
	assert.Equal(t, estimated, sum.Preflight.EstimatedMessages)
	if sum.Preflight.UnsizedMessages > 0 {
		var said bool
		for _, f := range sum.Preflight.Findings {
			said = said || (f.Check == "backlog size" && strings.Contains(f.Detail, "if they average under"))
		}
		assert.True(t, said, "preflight says how large the unsized messages may be: %+v", sum.Preflight.Findings)
	}

	// Once the API has sized every queue, the size is the bodies' bytes.
	brokertest.Eventually(t, 30*time.Second, func() error {
		for _, v := range topo.Vhosts {
			qs, err := e.SourceAPI.ListQueues(context.Background(), v, "name", "messages", "message_bytes")
			if err != nil {
				return err
			}
			for _, q := range qs {
				if n, _ := q.Count(); n != counts[v+"/"+q.Name] || q.MessageBytes != bodies[v+"/"+q.Name] {
					return fmt.Errorf("%s/%s: the API counts %d messages, %d bytes", v, q.Name, n, q.MessageBytes)
				}
			}
		}
		return nil
	})
	sum, err = migrate.Run(context.Background(), opts)
	require.NoError(t, err)
	assert.Equal(t, len(backlog.Messages), sum.Preflight.BacklogMessages)
	assert.Equal(t, total, sum.Preflight.BacklogBytes, "the backlog's size is its bodies' bytes")
	assert.Zero(t, sum.Preflight.EstimatedMessages)
	assert.Zero(t, sum.Preflight.UnsizedMessages)
	require.NotNil(t, sum.Check)
	assert.Positive(t, sum.Check.Count(definitions.StatusNew))
	for _, v := range topo.Vhosts {
		var vh map[string]any
		err := e.TargetAPI.Get(context.Background(), "vhosts/"+v, &vh)
		require.Error(t, err, "vhost %s must not exist on the target after a dry run", v)
	}
}

func TestMigrateStopsOnIncompatibleArgumentsBeforeChangingAnything(t *testing.T) {
	e := brokertest.New(t)
	topo, _ := seed(t, e, 2)
	require.NotEmpty(t, topo.IncompatibleQueues())
	opts := options(e, topo)
	opts.Plan.Incompatible = "" // default: abort

	sum, err := migrate.Run(context.Background(), opts)
	require.Error(t, err)
	assert.Equal(t, migrate.Preflight, migrate.FailedPhase(err), "the plan is checked in preflight, with every other input")
	assert.Equal(t, preflight.Conflict, preflight.ClassOf(err))
	assert.True(t, strings.Contains(err.Error(), "x-max-priority") || strings.Contains(err.Error(), "x-queue-mode"), err.Error())
	assert.Nil(t, sum.Drain, "nothing drained")
	for _, v := range topo.Vhosts {
		var vh map[string]any
		require.Error(t, e.TargetAPI.Get(context.Background(), "vhosts/"+v, &vh), "nothing imported")
	}
}

func TestMigrateStopsOnUnknownVhostInPreflight(t *testing.T) {
	e := brokertest.New(t)
	opts := migrate.Options{Source: e.Source, Target: e.Target, Vhosts: []string{e.Vhost, e.Vhost + "-typo"}}
	opts.StatePath = t.TempDir() + "/migrate.json"

	sum, err := migrate.Run(context.Background(), opts)
	require.Error(t, err, "a mistyped vhost must stop the migration, not select nothing")
	assert.Equal(t, migrate.Preflight, migrate.FailedPhase(err))
	assert.Contains(t, err.Error(), fmt.Sprintf("no vhost %q", e.Vhost+"-typo"))
	assert.NotContains(t, err.Error(), "preflight: preflight", "the phase is named once")
	assert.Nil(t, sum.Plan, "nothing planned or imported")
}

// A cutover in batches may make different choices per batch; what each
// batch imported is what verify must expect, not the last batch's choices.
func TestExpectedFollowsEachBatchsChoices(t *testing.T) {
	e := brokertest.New(t)
	ctx := context.Background()
	state := t.TempDir() + "/migrate.json"
	var all []string
	for _, choice := range []string{definitions.IncompatibleKeepClassic, definitions.IncompatibleDropArguments} {
		topo, _ := seed(t, e, 0)
		opts := options(e, topo)
		opts.Plan.Incompatible = choice
		opts.StatePath = state
		opts.SkipVerify = true
		_, err := migrate.Run(ctx, opts)
		require.NoError(t, err, choice)
		all = append(all, topo.Vhosts...)
	}

	want, found, err := migrate.Expected(ctx, e.SourceAPI, state, all)
	require.NoError(t, err)
	require.True(t, found)
	got, err := definitions.Export(ctx, e.TargetAPI)
	require.NoError(t, err)
	assert.Empty(t, definitions.Compare(want, got.Only(all...)), "both batches as imported")

	// With the last batch's choices alone, the first batch would differ:
	// that is what this test guards against.
	last, err := migrate.Planned(ctx, e.SourceAPI, state, all, &definitions.Options{Incompatible: definitions.IncompatibleDropArguments})
	require.NoError(t, err)
	assert.NotEmpty(t, definitions.Compare(last.Want(), got.Only(all...)))

	_, found, err = migrate.Expected(ctx, e.SourceAPI, t.TempDir()+"/none.json", all)
	require.NoError(t, err)
	assert.False(t, found, "no migration recorded")
}

// A consumer still attached to a source queue stops the migration in
// preflight, before anything is imported, in a dry run too.
func TestMigrateRefusesLiveClientsBeforeChangingAnything(t *testing.T) {
	e := brokertest.New(t)
	topo, _ := seed(t, e, 0)
	shop := topo.Vhost(fixture.Shop)
	conn, err := e.Source.Dial(context.Background(), shop)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.Consume("orders.created", "still-here", false, false, false, false, nil)
	require.NoError(t, err)

	for _, dry := range []bool{true, false} {
		opts := options(e, topo)
		opts.DryRun = dry
		sum, err := migrate.Run(context.Background(), opts)
		require.Error(t, err, "dry run %v", dry)
		assert.Equal(t, migrate.Preflight, migrate.FailedPhase(err))
		assert.Contains(t, err.Error(), "consumer")
		assert.Contains(t, err.Error(), "--allow-live")
		assert.Nil(t, sum.Import, "nothing imported")
		assert.Nil(t, sum.Drain, "nothing drained")
	}
	var vh map[string]any
	require.Error(t, e.TargetAPI.Get(context.Background(), "vhosts/"+shop, &vh), "nothing imported")
}

// A verification that fails after the drain leaves the counts unsettled:
// the next run, with nothing left to move, checks them again instead of
// skipping conservation and passing.
func TestRerunAfterFailedVerifyChecksConservationAgain(t *testing.T) {
	e := brokertest.New(t)
	topo, _ := seed(t, e, 2)
	opts := options(e, topo)
	dir := t.TempDir()
	opts.Drain.StatePath, opts.StatePath = dir+"/drain.json", dir+"/migrate.json"
	opts.Verify.ServiceURL = "amqp://127.0.0.1:1/" // a client Service that does not answer: health fails
	ctx := context.Background()

	sum, err := migrate.Run(ctx, opts)
	require.Error(t, err)
	require.Equal(t, migrate.Verify, migrate.FailedPhase(err), "phases: %+v", sum.Phases)
	require.NotNil(t, sum.Drain)
	moved := map[string]bool{}
	for _, q := range sum.Drain.Queues {
		moved[q.Vhost+"/"+q.Queue] = true
	}
	require.NotEmpty(t, moved)

	opts.Verify.ServiceURL = ""
	again, err := migrate.Run(ctx, opts)
	require.NoError(t, err, "phases: %+v", again.Phases)
	checked := map[string]bool{}
	for _, c := range again.Verify.Area(verify.AreaConservation) {
		assert.NotEqual(t, verify.Skip, c.Status, "%s: %s", c.Name, c.Detail)
		checked[strings.TrimPrefix(c.Name, "conservation ")] = c.Status == verify.Pass || c.Status == verify.Warn
	}
	for q := range moved {
		assert.True(t, checked[q], "the rerun checks %s's counts again", q)
	}
}
