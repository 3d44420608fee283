package verify

import (
	"context"
	"fmt"
	"strings"

	"github.com/warrenmq/warren/definitions"
)

// definitions compares the target's definitions with what the migration
// planned: the source's export transformed with Options.Plan (the same
// choices the migration was made with). There is one check per kind of
// object, each naming every difference; Report.Differences holds them all.
func (s *session) definitions(ctx context.Context) {
	if s.opts.Want == nil && s.source == nil {
		s.check(ctx, AreaDefinitions, "definitions", func() outcome {
			return skipf("no source given (--source-url, --source-api): nothing to compare the target with")
		})
		return
	}
	var want, got *definitions.Definitions
	s.check(ctx, AreaDefinitions, "definitions export", func() outcome {
		if s.opts.Want != nil {
			var err error
			if got, err = definitions.Export(ctx, s.target); err != nil {
				return failf("%v", err)
			}
			want = s.opts.Want
			if len(s.opts.Vhosts) > 0 {
				want = want.Only(s.opts.Vhosts...)
			}
			return passf("the migration plan's %d objects are compared with the target", want.Len())
		}
		src, err := definitions.Export(ctx, s.source)
		if err != nil {
			return failf("%v", err)
		}
		if len(s.opts.Vhosts) > 0 {
			// Plan only what is verified: other vhosts' blockers or
			// differences are not this verification's business.
			src = src.Only(s.opts.Vhosts...)
		}
		plan, err := definitions.NewPlan(src, s.opts.Plan)
		if err != nil {
			return failf("%v", err)
		}
		if err := plan.Err(); err != nil {
			return failf("the plan does not apply as given; verify with the choices the migration was made with: %v", err)
		}
		if got, err = definitions.Export(ctx, s.target); err != nil {
			return failf("%v", err)
		}
		want = plan.Want()
		return passf("the source's %d objects, after the plan's %d changes, are compared with the target", want.Len(), len(plan.Changes))
	})
	if want == nil {
		return
	}
	want = s.adoptDrainedAway(want, got)
	byKind := map[definitions.Kind][]string{}
	for _, d := range definitions.Compare(want, got) {
		if strings.Contains(d.ID, Prefix) {
			continue // a concurrent verification's own probe objects
		}
		s.report.Differences = append(s.report.Differences, d)
		byKind[d.Kind] = append(byKind[d.Kind], d.String())
	}
	for _, k := range definitions.Kinds {
		n := len(want.Objects(k))
		diffs := byKind[k]
		if n == 0 && len(diffs) == 0 {
			continue
		}
		s.check(ctx, AreaDefinitions, "definitions "+string(k), func() outcome {
			if len(diffs) > 0 {
				return failf("%d difference(s): %s", len(diffs), strings.Join(diffs, "; "))
			}
			return passf("%d %s(s) as planned", n, k)
		})
	}
}

// validPlan rejects plan choices that NewPlan would refuse, before any I/O.
func validPlan(o definitions.Options) error {
	if _, err := definitions.NewPlan(definitions.New(), o); err != nil {
		return fmt.Errorf("verify: plan options: %w", err)
	}
	return nil
}

// adoptDrainedAway adds to want, as the target holds them, the queues the
// drain report says the drain deleted from the source (auto-delete queues
// go with their last consumer, the shovel), with the bindings into them.
// The source's export no longer has them, so without this a correct
// migration would show them as unexpected on the target. Their contents
// are the conservation check's business.
func (s *session) adoptDrainedAway(want, got *definitions.Definitions) *definitions.Definitions {
	gone := map[string]bool{}
	for _, q := range s.opts.DrainReport {
		if q.SourceDeleted {
			gone[q.Vhost+"\x00"+q.Queue] = true
		}
	}
	if len(gone) == 0 {
		return want
	}
	adopted := got.QueuesAndBindingsInto(func(vhost, queue string) bool { return gone[vhost+"\x00"+queue] })
	return definitions.Union(adopted, want)
}
