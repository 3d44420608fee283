package definitions

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	version "github.com/hashicorp/go-version"

	"github.com/warrenmq/warren/broker"
)

// Status is how one planned object stands against the target.
type Status string

// Statuses of ObjectStatus.
const (
	StatusNew       Status = "new"       // the target lacks it: Import creates it
	StatusIdentical Status = "identical" // the target holds it as planned (a vhost perhaps with another description or tags): nothing to do
	StatusConflict  Status = "conflict"  // the target holds it differently: Import stops
	StatusSkipped   Status = "skipped"   // a conflict left as the target has it (Options.SkipConflicts)
)

// ObjectStatus is one planned object's status on the target.
type ObjectStatus struct {
	Kind   Kind        `json:"kind"`
	ID     string      `json:"id"`
	Status Status      `json:"status"`
	Fields []FieldDiff `json:"fields,omitempty"` // for conflicts: planned vs. found
}

// Finding is the outcome of one preflight check.
type Finding struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// CheckResult is the plan set against the target: preflight findings and
// the status of every planned object.
type CheckResult struct {
	Target    *Broker        `json:"target"`
	Preflight []Finding      `json:"preflight"`
	Objects   []ObjectStatus `json:"objects"`
	Blockers  []Change       `json:"blockers,omitempty"`
	// Invalid lists the objects RabbitMQ would refuse part-way through
	// an import (see Validate), Missing the objects they refer to that
	// neither the plan nor the target has (see References).
	Invalid []string `json:"invalid,omitempty"`
	Missing []string `json:"missing,omitempty"`

	plan *Plan
	// got is the target's export the check was made against: what
	// existed before an import, which a rollback must leave alone.
	got *Definitions
}

// Count returns how many objects have status s.
func (r *CheckResult) Count(s Status) int {
	n := 0
	for _, o := range r.Objects {
		if o.Status == s {
			n++
		}
	}
	return n
}

// Err is nil when Import may go ahead. Otherwise it is ClassUsage for
// objects the target would refuse or that refer to missing ones,
// ClassPreflight for failed preflight checks, or ClassConflict for
// conflicts (unless skipped) and blockers, naming each.
func (r *CheckResult) Err() error {
	var parts []string
	class := ClassOther
	if bad := append(slices.Clone(r.Invalid), r.Missing...); len(bad) > 0 {
		class = ClassUsage
		parts = append(parts, fmt.Sprintf("the target would refuse %d thing(s) in these definitions part-way through the import; nothing was changed. Fix them in the file (or on the target) and run again:\n  %s",
			len(bad), strings.Join(bad, "\n  ")))
	}
	var failed []string
	for _, f := range r.Preflight {
		if !f.OK {
			failed = append(failed, f.Check+": "+f.Detail)
		}
	}
	if len(failed) > 0 {
		if class == ClassOther {
			class = ClassPreflight
		}
		parts = append(parts, fmt.Sprintf("the target is not fit for these definitions:\n  %s", strings.Join(failed, "\n  ")))
	}
	if len(parts) > 0 {
		return classed(class, "%s", strings.Join(parts, "\n"))
	}
	return r.ConflictErr()
}

// ConflictErr is the part of Err about the plan itself, nil when it may
// be imported as it stands: queues that need a decision, and objects that
// conflict with the target (unless skipped), as ClassConflict.
func (r *CheckResult) ConflictErr() error {
	if err := r.plan.Err(); err != nil {
		return err
	}
	var conflicts []string
	hint := ""
	for _, o := range r.Objects {
		if o.Status == StatusConflict {
			var fs []string
			for _, f := range o.Fields {
				fs = append(fs, f.String())
				if o.Kind == KindVhost && f.Field == "default_queue_type" {
					// An existing vhost's default queue type cannot be
					// changed by an import (nor at all before 3.11).
					hint = "; for a vhost's default queue type, --keep-vhost-default-queue-type plans without changing it"
				}
			}
			conflicts = append(conflicts, fmt.Sprintf("%s %s: %s", o.Kind, o.ID, strings.Join(fs, "; ")))
		}
	}
	if len(conflicts) > 0 {
		return classed(ClassConflict, "%d object(s) already exist on the target with other settings; nothing was changed. Remove or fix them on the target, or leave them as they are with --skip-conflicts%s:\n  %s",
			len(conflicts), hint, strings.Join(conflicts, "\n  "))
	}
	return nil
}

// Check sets the plan against the target and changes nothing: it runs the
// preflight checks (reachable, login, administrator, a version not older
// than the source's, every exchange type and plugin the definitions need)
// and finds, for every object the plan wants, whether the target lacks it,
// holds it identically, or holds it otherwise (a conflict; the HTTP API
// would silently keep the target's version, so this check is the only
// guard).
//
// The result is non-nil whenever the target could be read, even when the
// returned error (r.Err()) reports failed preflight checks or conflicts, so
// that callers can print it.
func (p *Plan) Check(ctx context.Context, target *broker.API) (*CheckResult, error) {
	b, err := Probe(ctx, target)
	if err != nil {
		return nil, err
	}
	got, err := export(ctx, target)
	if err != nil {
		return nil, err
	}
	r := &CheckResult{Target: b, Blockers: p.Blockers(), plan: p, got: got}
	r.Preflight = p.preflight(b)
	want := p.want
	r.Invalid, r.Missing = Validate(want), References(want, got)
	for _, k := range Kinds {
		have := index(k, got.Sections[k])
		for _, w := range want.Sections[k] {
			id := ID(k, w)
			st := ObjectStatus{Kind: k, ID: id, Status: StatusNew}
			if g, ok := have[id]; ok {
				st.Status = StatusIdentical
				if fd := diffObject(k, w, g); len(fd) > 0 {
					st.Fields = fd
					if !cosmetic(k, fd) {
						st.Status = StatusConflict
						if p.Options.SkipConflicts {
							st.Status = StatusSkipped
						}
					}
				}
			}
			r.Objects = append(r.Objects, st)
		}
	}
	return r, r.Err()
}

// cosmetic reports whether every field that differs is a vhost's
// description or tags: labels that change no behaviour (the default vhost
// is "Default virtual host" on some versions and undescribed on others), so
// an existing vhost that differs only there counts as identical, with its
// differences still listed.
func cosmetic(k Kind, fd []FieldDiff) bool {
	if k != KindVhost {
		return false
	}
	for _, f := range fd {
		if f.Field != "description" && f.Field != "tags" {
			return false
		}
	}
	return true
}

// plugins maps what definitions can need to the plugin that provides it.
var (
	exchangePlugins = map[string]string{
		"x-consistent-hash":     "rabbitmq_consistent_hash_exchange",
		"x-delayed-message":     "rabbitmq_delayed_message_exchange",
		"x-random":              "rabbitmq_random_exchange",
		"x-recent-history":      "rabbitmq_recent_history_exchange",
		"x-jms-topic":           "rabbitmq_jms_topic_exchange",
		"x-modulus-hash":        "rabbitmq_sharding",
		"x-federation-upstream": "rabbitmq_federation",
		"x-local-random":        "rabbitmq_local_random_exchange",
	}
	componentPlugins = map[string]string{
		"federation-upstream":     "rabbitmq_federation",
		"federation-upstream-set": "rabbitmq_federation",
		"shovel":                  "rabbitmq_shovel",
	}
	// coreComponents are runtime parameter components of the broker itself.
	coreComponents = map[string]bool{"vhost-limits": true, "operator_policy": true, "policy": true}
	// policyPlugins are policy keys that only mean something with a plugin.
	policyPlugins = map[string]string{
		"federation-upstream":     "rabbitmq_federation",
		"federation-upstream-set": "rabbitmq_federation",
	}
)

func (p *Plan) preflight(b *Broker) []Finding {
	var out []Finding
	admin := slices.Contains(b.UserTags, "administrator")
	out = append(out, Finding{Check: "administrator", OK: admin, Detail: fmt.Sprintf("user %q has tags %v", b.User, b.UserTags)})
	if !admin {
		out[len(out)-1].Detail += ": importing definitions needs the administrator tag"
	}
	out = append(out, p.checkVersion(b))

	apps := map[string]bool{}
	for _, a := range b.Applications {
		apps[a] = true
	}
	types := map[string]bool{}
	for _, t := range b.ExchangeTypes {
		types[t] = true
	}
	need := map[string][]string{} // missing thing → objects needing it
	var unknown []string
	for _, x := range p.want.Sections[KindExchange] {
		if t := x.Str("type"); !types[t] {
			what := fmt.Sprintf("exchange type %s (plugin %s)", t, pluginOr(exchangePlugins[t], "that provides it"))
			need[what] = append(need[what], ID(KindExchange, x))
		}
	}
	for _, prm := range p.want.Sections[KindParameter] {
		c := prm.Str("component")
		if plugin, ok := componentPlugins[c]; ok && !apps[plugin] {
			what := "plugin " + plugin
			need[what] = append(need[what], ID(KindParameter, prm))
		} else if !ok && !coreComponents[c] {
			unknown = append(unknown, c)
		}
	}
	for _, pol := range p.want.Sections[KindPolicy] {
		for key := range pol.Map("definition") {
			if plugin, ok := policyPlugins[key]; ok && !apps[plugin] {
				what := "plugin " + plugin
				need[what] = append(need[what], ID(KindPolicy, pol))
			}
		}
	}
	if len(need) == 0 {
		out = append(out, Finding{Check: "plugins", OK: true, Detail: "every exchange type, runtime parameter and policy key is supported"})
	}
	missing := make([]string, 0, len(need))
	for what := range need {
		missing = append(missing, what)
	}
	sort.Strings(missing)
	for _, what := range missing {
		objs := need[what]
		sort.Strings(objs)
		out = append(out, Finding{Check: "plugins", OK: false,
			Detail: fmt.Sprintf("the target lacks %s, needed by %s", what, strings.Join(objs, ", "))})
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		out = append(out, Finding{Check: "parameter components", OK: true,
			Detail: "warren does not know which plugin provides " + strings.Join(slices.Compact(unknown), ", ") + "; the import fails if the target lacks it"})
	}

	if mirroring := p.mirroringPolicies(); len(mirroring) > 0 {
		v, err := version.NewVersion(b.Version)
		if err == nil && v.Segments()[0] >= 4 {
			out = append(out, Finding{Check: "mirroring policies", OK: false,
				Detail: fmt.Sprintf("RabbitMQ %s refuses classic mirroring keys (ha-*), used by %s: plan with --mirroring rewrite or drop", b.Version, strings.Join(mirroring, ", "))})
		}
	}
	return out
}

func pluginOr(p, def string) string {
	if p == "" {
		return def
	}
	return p
}

func (p *Plan) mirroringPolicies() []string {
	var out []string
	for _, pol := range p.want.Sections[KindPolicy] {
		for key := range pol.Map("definition") {
			if isMirroringKey(key) {
				out = append(out, ID(KindPolicy, pol))
				break
			}
		}
	}
	return out
}

func (p *Plan) checkVersion(b *Broker) Finding {
	f := Finding{Check: "version", OK: true}
	if p.SourceVersion == "" {
		f.Detail = fmt.Sprintf("target %s; the definitions do not say which version wrote them", b.Version)
		return f
	}
	src, err1 := version.NewVersion(p.SourceVersion)
	tgt, err2 := version.NewVersion(b.Version)
	if err1 != nil || err2 != nil {
		f.Detail = fmt.Sprintf("cannot compare source %q with target %q", p.SourceVersion, b.Version)
		return f
	}
	// Compare release versions only: 3.13.0-rc.1 of the target is as good
	// as 3.13.0 of the source for definitions.
	if tgt.Core().LessThan(src.Core()) {
		f.OK = false
		f.Detail = fmt.Sprintf("the target runs RabbitMQ %s, older than the source's %s: definitions may use features it lacks; upgrade the target first", b.Version, p.SourceVersion)
		return f
	}
	f.Detail = fmt.Sprintf("target %s, source %s", b.Version, p.SourceVersion)
	return f
}
