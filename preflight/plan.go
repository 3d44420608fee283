package preflight

import "github.com/warrenmq/warren/definitions"

// Plan turns a definitions plan's check against the target into findings:
// the target's fitness (administrator, version, plugins) as preflight
// failures, objects the target would refuse or that refer to missing ones
// as usage failures, conflicts and queues that need a decision as one
// conflict failure.
func Plan(chk *definitions.CheckResult) []Finding {
	var out []Finding
	for _, f := range chk.Preflight {
		if f.OK {
			out = append(out, Passf("definitions: "+f.Check, "%s", f.Detail))
		} else {
			out = append(out, Failf(Unfit, "definitions: "+f.Check, "%s", f.Detail))
		}
	}
	for _, p := range chk.Invalid {
		out = append(out, Failf(Usage, "definitions: invalid", "%s", p))
	}
	for _, p := range chk.Missing {
		out = append(out, Failf(Usage, "definitions: missing", "%s", p))
	}
	if err := chk.ConflictErr(); err != nil {
		out = append(out, Failf(Conflict, "definitions: plan", "%v", err))
	} else {
		out = append(out, Passf("definitions: plan", "%d new, %d identical, %d skipped conflicts",
			chk.Count(definitions.StatusNew), chk.Count(definitions.StatusIdentical), chk.Count(definitions.StatusSkipped)))
	}
	return out
}
