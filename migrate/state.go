package migrate

import (
	"context"
	"fmt"
	"strings"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/jsonfile"
)

// snapshot is what a migration remembers between runs: the definitions of
// source queues that its own drain deleted.
//
// An auto-delete queue goes away with its last consumer, the shovel, once
// empty. A rerun that planned from a fresh export alone would forget such a
// queue and then find it "unexpected" on the target. So the drain's victims
// (each queue with the bindings into it, as the export before the drain had
// them) are kept and added back to every later plan. Nothing else is kept:
// an object the user removes from the source is gone from the next plan.
type snapshot struct {
	DeletedByDrain *definitions.Definitions `json:"deleted_by_drain"`
	// Plan is the choices the last migration was planned with, so that
	// `warren verify` can expect what it imported without repeating them.
	Plan *definitions.Options `json:"plan_options,omitempty"`
	// PlanByVhost is the choices each vhost was last migrated with: a
	// cutover in batches (--vhost a, then --vhost b --incompatible ...)
	// made each batch's plan with its own.
	PlanByVhost map[string]definitions.Options `json:"plan_options_by_vhost,omitempty"`
}

func loadSnapshot(path string) (*snapshot, error) {
	if path == "" {
		return nil, nil
	}
	s := &snapshot{}
	found, err := jsonfile.Read(path, s)
	if err != nil {
		return nil, fmt.Errorf("read migration state: %w", err)
	}
	if !found {
		return nil, nil
	}
	return s, nil
}

func saveSnapshot(path string, s *snapshot) error {
	if path == "" {
		return nil
	}
	if err := jsonfile.Write(path, s); err != nil {
		return fmt.Errorf("write migration state: %w", err)
	}
	return nil
}

// Planned returns the plan a migration between the source behind src and
// a target makes: the source's export now (limited to vhosts when given),
// plus the queues the migration's drain deleted, transformed with opts, or
// with the choices the last migration recorded when opts is nil. A missing
// state file is no error: the plan is then the export's alone.
func Planned(ctx context.Context, src *broker.API, statePath string, vhosts []string, opts *definitions.Options) (*definitions.Plan, error) {
	export, err := definitions.Export(ctx, src)
	if err != nil {
		return nil, err
	}
	snap, err := loadSnapshot(statePath)
	if err != nil {
		return nil, err
	}
	return planFrom(export, snap, vhosts, opts)
}

// planFrom is Planned on an export and a snapshot already read.
func planFrom(export *definitions.Definitions, snap *snapshot, vhosts []string, opts *definitions.Options) (*definitions.Plan, error) {
	defs := export
	if len(vhosts) > 0 {
		defs = defs.Only(vhosts...)
	}
	if snap != nil && snap.DeletedByDrain != nil {
		deleted := snap.DeletedByDrain
		if len(vhosts) > 0 {
			deleted = deleted.Only(vhosts...)
		}
		defs = definitions.Union(deleted, defs)
	}
	var o definitions.Options
	switch {
	case opts != nil:
		o = *opts
	case snap != nil && snap.Plan != nil:
		o = *snap.Plan
	}
	return definitions.NewPlan(defs, o)
}

// recordPlan records o as the choices of the last migration and of each of
// its vhosts.
func recordPlan(statePath string, vhosts []string, o definitions.Options) error {
	snap, err := loadSnapshot(statePath)
	if err != nil {
		return err
	}
	if snap == nil {
		snap = &snapshot{}
	}
	snap.Plan = &o
	if snap.PlanByVhost == nil {
		snap.PlanByVhost = map[string]definitions.Options{}
	}
	for _, v := range vhosts {
		snap.PlanByVhost[v] = o
	}
	return saveSnapshot(statePath, snap)
}

// Expected returns the definitions that the migrations recorded at
// statePath imported into vhosts (every vhost of the source when empty):
// each vhost planned as Planned does, with the choices its own migration
// recorded, or the last migration's for a vhost none recorded. found is
// false when no migration is recorded there.
func Expected(ctx context.Context, src *broker.API, statePath string, vhosts []string) (want *definitions.Definitions, found bool, err error) {
	snap, err := loadSnapshot(statePath)
	if err != nil || snap == nil || (snap.Plan == nil && len(snap.PlanByVhost) == 0) {
		return nil, false, err
	}
	export, err := definitions.Export(ctx, src)
	if err != nil {
		return nil, true, err
	}
	if len(vhosts) == 0 {
		for _, v := range export.Objects(definitions.KindVhost) {
			vhosts = append(vhosts, v.Name())
		}
	}
	// Group the vhosts by their choices, so that each set is planned once.
	var fallback definitions.Options
	if snap.Plan != nil {
		fallback = *snap.Plan
	}
	var order []string
	groups := map[string][]string{}
	choices := map[string]definitions.Options{}
	for _, v := range vhosts {
		o, ok := snap.PlanByVhost[v]
		if !ok {
			o = fallback
		}
		key := fmt.Sprintf("%+v", o)
		if _, seen := groups[key]; !seen {
			order = append(order, key)
			choices[key] = o
		}
		groups[key] = append(groups[key], v)
	}
	want = definitions.New()
	for _, key := range order {
		o := choices[key]
		plan, err := planFrom(export, snap, groups[key], &o)
		if err != nil {
			return nil, true, err
		}
		if err := plan.Err(); err != nil {
			return nil, true, fmt.Errorf("vhosts %s with the recorded choices: %w", strings.Join(groups[key], ", "), err)
		}
		want = definitions.Union(want, plan.Want())
	}
	return want, true, nil
}
