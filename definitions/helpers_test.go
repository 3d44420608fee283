package definitions_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab/fixture"
)

// world is one test's brokers with the fixture applied to the source and
// removed from both sides afterwards.
type world struct {
	*brokertest.Env
	Topo *fixture.Topology
	Ctx  context.Context
}

func newWorld(t *testing.T) *world {
	t.Helper()
	e := brokertest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	t.Cleanup(func() {
		if err := fixture.Remove(context.Background(), e.SourceAPI, e.Vhost); err != nil {
			t.Error(err)
		}
		if err := fixture.Remove(context.Background(), e.TargetAPI, e.Vhost); err != nil {
			t.Error(err)
		}
	})
	topo, err := fixture.Apply(ctx, e.SourceAPI, e.Vhost)
	require.NoError(t, err)
	return &world{Env: e, Topo: topo, Ctx: ctx}
}

// source exports the source and keeps the fixture's vhosts.
func (w *world) source(t *testing.T) *definitions.Definitions {
	t.Helper()
	d, err := definitions.Export(w.Ctx, w.SourceAPI)
	require.NoError(t, err)
	return d.Only(w.Topo.Vhosts...)
}

// target exports the target and keeps the fixture's vhosts.
func (w *world) target(t *testing.T) *definitions.Definitions {
	t.Helper()
	d, err := definitions.Export(w.Ctx, w.TargetAPI)
	require.NoError(t, err)
	return d.Only(w.Topo.Vhosts...)
}

func find(t *testing.T, d *definitions.Definitions, k definitions.Kind, id string) definitions.Object {
	t.Helper()
	o, ok := d.Find(k, id)
	require.True(t, ok, "%s %s not found", k, id)
	return o
}

func changesFor(p *definitions.Plan, k definitions.Kind, id string) []definitions.Change {
	var out []definitions.Change
	for _, c := range p.Changes {
		if c.Kind == k && c.ID == id {
			out = append(out, c)
		}
	}
	return out
}
