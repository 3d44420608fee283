package definitions

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Queue type choices for Options.QueueType.
const (
	// QueueTypeQuorum converts durable, non-exclusive, non-auto-delete
	// classic queues to quorum queues. It is the default.
	QueueTypeQuorum = "quorum"
	// QueueTypeKeep keeps every queue's type.
	QueueTypeKeep = "keep"
)

// Choices for Options.Incompatible: what to do with a queue to be converted
// whose arguments quorum queues refuse or ignore.
const (
	// IncompatibleAbort records the queue as a blocker: the plan cannot be
	// imported until a decision is made. It is the default.
	IncompatibleAbort = "abort"
	// IncompatibleKeepClassic keeps such queues classic.
	IncompatibleKeepClassic = "keep-classic"
	// IncompatibleDropArguments converts them and drops the arguments.
	IncompatibleDropArguments = "drop-arguments"
)

// Choices for Options.Mirroring: what to do with classic mirroring policies
// (ha-mode, ha-params, ha-sync-mode, ...).
const (
	// MirroringKeep imports them unchanged and reports them. It is the
	// default.
	MirroringKeep = "keep"
	// MirroringRewrite removes the ha-* keys and keeps the rest of the
	// policy; a policy left empty is dropped.
	MirroringRewrite = "rewrite"
	// MirroringDrop leaves mirroring policies out entirely.
	MirroringDrop = "drop"
)

// Options are the user's decisions for a plan. The zero value is the
// default: convert to quorum, abort on incompatible arguments, keep (and
// report) mirroring policies, leave guest out, abort on conflicts.
type Options struct {
	// QueueType is QueueTypeQuorum (default when empty) or QueueTypeKeep.
	QueueType string `json:"queue_type"`
	// Incompatible is IncompatibleAbort (default when empty),
	// IncompatibleKeepClassic or IncompatibleDropArguments.
	Incompatible string `json:"incompatible"`
	// KeepClassic names queues to keep classic whatever their arguments,
	// as "vhost/queue" patterns in path.Match syntax ("shop/jobs.*",
	// "*/legacy"): the per-queue form of IncompatibleKeepClassic.
	KeepClassic []string `json:"keep_classic,omitempty"`
	// Mirroring is MirroringKeep (default when empty), MirroringRewrite or
	// MirroringDrop.
	Mirroring string `json:"mirroring"`
	// KeepVhostDefaultQueueType leaves vhosts' default queue type alone.
	// By default a vhost whose queues are converted gets the default queue
	// type quorum, so that clients which redeclare those queues without an
	// x-queue-type argument are not refused (PRECONDITION_FAILED).
	KeepVhostDefaultQueueType bool `json:"keep_vhost_default_queue_type,omitempty"`
	// IncludeGuest carries the guest user (and its permissions) over.
	IncludeGuest bool `json:"include_guest,omitempty"`
	// SkipConflicts lets Import go ahead when objects conflict with the
	// target: those objects are left as the target has them.
	SkipConflicts bool `json:"skip_conflicts,omitempty"`
}

// Validate reports invalid options (an unknown queue type or choice, a
// malformed --keep-classic pattern) as a ClassUsage error, before any I/O.
func (o Options) Validate() error { return o.normalize() }

func (o *Options) normalize() error {
	if o.QueueType == "" {
		o.QueueType = QueueTypeQuorum
	}
	if o.Incompatible == "" {
		o.Incompatible = IncompatibleAbort
	}
	if o.Mirroring == "" {
		o.Mirroring = MirroringKeep
	}
	switch o.QueueType {
	case QueueTypeQuorum, QueueTypeKeep:
	default:
		return classed(ClassUsage, "unknown queue type %q: want %s or %s", o.QueueType, QueueTypeQuorum, QueueTypeKeep)
	}
	switch o.Incompatible {
	case IncompatibleAbort, IncompatibleKeepClassic, IncompatibleDropArguments:
	default:
		return classed(ClassUsage, "unknown choice %q for incompatible arguments: want %s, %s or %s", o.Incompatible,
			IncompatibleAbort, IncompatibleKeepClassic, IncompatibleDropArguments)
	}
	switch o.Mirroring {
	case MirroringKeep, MirroringRewrite, MirroringDrop:
	default:
		return classed(ClassUsage, "unknown choice %q for mirroring policies: want %s, %s or %s", o.Mirroring,
			MirroringKeep, MirroringRewrite, MirroringDrop)
	}
	for _, p := range o.KeepClassic {
		if !strings.Contains(p, "/") {
			return classed(ClassUsage, "keep-classic pattern %q: want vhost/queue (either part may use * and ?)", p)
		}
		if _, err := path.Match(p, ""); err != nil {
			return classed(ClassUsage, "keep-classic pattern %q: %v", p, err)
		}
	}
	return nil
}

// Action is what a plan does to one object.
type Action string

// Actions a Change may carry.
const (
	ActionConvert      Action = "convert"       // classic queue becomes a quorum queue
	ActionKeepClassic  Action = "keep-classic"  // queue stays classic
	ActionDropArgument Action = "drop-argument" // a queue argument is left out
	ActionIncompatible Action = "incompatible"  // needs a decision: blocks the import
	ActionRewrite      Action = "rewrite"       // object changed (policy without ha-* keys, vhost default queue type)
	ActionDrop         Action = "drop"          // object left out
	ActionMapVhost     Action = "map-vhost"     // single-vhost file mapped onto a vhost
	ActionWarn         Action = "warn"          // imported unchanged, but needs attention
)

// Change is one transformation of the plan and why it is made.
type Change struct {
	Kind   Kind   `json:"kind"`
	ID     string `json:"id"`
	Action Action `json:"action"`
	// Detail says what changes ("x-max-priority=10", "ha-mode, ha-params").
	Detail string `json:"detail,omitempty"`
	Reason string `json:"reason"`
	// Blocking changes stop Import until the user decides.
	Blocking bool `json:"blocking,omitempty"`
}

// Plan is the source's definitions transformed for the target, with every
// change and its reason. It changes nothing by itself; see Check and Import.
type Plan struct {
	// SourceVersion is the RabbitMQ version that wrote the definitions, ""
	// when a file does not say.
	SourceVersion string   `json:"source_version,omitempty"`
	Options       Options  `json:"options"`
	Changes       []Change `json:"changes"`
	// Counts is the number of objects of each kind the target should hold.
	Counts map[Kind]int `json:"counts"`

	source *Definitions
	want   *Definitions
}

// Want returns what the target should hold after Import: the source's
// definitions with every change applied. It is a copy.
func (p *Plan) Want() *Definitions { return p.want.Clone() }

// Source returns the definitions the plan was made from. It is a copy.
func (p *Plan) Source() *Definitions { return p.source.Clone() }

// Blockers returns the changes that need a decision before Import.
func (p *Plan) Blockers() []Change {
	var out []Change
	for _, c := range p.Changes {
		if c.Blocking {
			out = append(out, c)
		}
	}
	return out
}

// Err is a ClassConflict error naming each blocker, or nil.
func (p *Plan) Err() error {
	b := p.Blockers()
	if len(b) == 0 {
		return nil
	}
	lines := make([]string, len(b))
	for i, c := range b {
		lines[i] = fmt.Sprintf("%s %s: %s (%s)", c.Kind, c.ID, c.Detail, c.Reason)
	}
	return classed(ClassConflict, "%d queue(s) have arguments that quorum queues refuse or ignore; decide for each: keep it classic (--keep-classic vhost/queue, or --incompatible keep-classic for all), drop the arguments (--incompatible drop-arguments), or keep every queue's type (--queue-type keep):\n  %s",
		len(b), strings.Join(lines, "\n  "))
}

// incompatible holds the queue arguments quorum queues cannot honour, with
// why. Checked against RabbitMQ 3.10.8 (TestQuorumRefusesIncompatibleArguments):
// the first five are refused with 400 "invalid arg ... of queue type
// rabbit_quorum_queue"; x-overflow=reject-publish-dlx is accepted, logged as
// "Invalid overflow strategy" and silently replaced by drop-head, which
// changes what happens to messages and so needs a decision just the same.
var incompatible = []struct {
	arg, value, reason string
}{
	{"x-max-priority", "", "quorum queues have no message priorities; the target refuses the argument"},
	{"x-queue-mode", "", "lazy mode is classic-only (quorum queues keep messages on disk anyway); the target refuses the argument"},
	{"x-queue-master-locator", "", "classic-only (quorum queues use x-queue-leader-locator); the target refuses the argument"},
	{"x-queue-version", "", "classic queue storage version; the target refuses the argument"},
	{"x-max-age", "", "stream-only retention; the target refuses the argument"},
	{"x-overflow", "reject-publish-dlx", "quorum queues do not implement reject-publish-dlx: the target accepts it but falls back to drop-head, so overflowing messages would be dropped (dead-lettered) instead of refused"},
}

// incompatibleArgs lists a queue's arguments that quorum queues refuse or
// ignore, sorted, each with its reason.
func incompatibleArgs(args map[string]any) (found []string, reasons []string) {
	for _, in := range incompatible {
		v, ok := args[in.arg]
		if !ok {
			continue
		}
		if in.value != "" && fmt.Sprint(v) != in.value {
			continue
		}
		found = append(found, in.arg)
		reasons = append(reasons, in.arg+": "+in.reason)
	}
	return found, reasons
}

// identityParameters are global parameters that name the source cluster.
var identityParameters = map[string]string{
	"cluster_name":        "the source's cluster name: importing it would rename the target cluster",
	"internal_cluster_id": "the source's cluster identity: importing it would overwrite the target's (used by federation and shovels to detect loops)",
}

// NewPlan transforms src for the target according to opts. Incompatible
// queue arguments are found here, before anything changes, and recorded as
// blocking changes unless opts decides for them (see Blockers and Err). Its
// only errors are ClassUsage, for invalid options.
func NewPlan(src *Definitions, opts Options) (*Plan, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	p := &Plan{SourceVersion: src.Version(), Options: opts, source: src.Clone(), want: src.Clone(), Changes: []Change{}}
	w := p.want
	if m := src.mapped; m != nil {
		reason := "the file is a single-vhost export, which names no vhost"
		detail := "every object goes into vhost " + m.To
		if m.From != "" && m.From != m.To {
			detail += fmt.Sprintf(" (the file's parameters and policies named %s)", m.From)
		}
		p.add(KindVhost, m.To, ActionMapVhost, detail, reason)
	}

	// Broker identity never moves.
	w.filter(KindGlobalParameter, func(o Object) bool {
		if why, ok := identityParameters[o.Name()]; ok {
			p.add(KindGlobalParameter, o.Name(), ActionDrop, "", why)
			return false
		}
		return true
	})

	if !opts.IncludeGuest {
		const why = "guest is RabbitMQ's default account with a well-known password; it is not carried over unless asked (--include-guest)"
		for _, k := range []Kind{KindUser, KindPermission, KindTopicPermission} {
			w.filter(k, func(o Object) bool {
				user := o.Str("user")
				if k == KindUser {
					user = o.Name()
				}
				if user == "guest" {
					p.add(k, ID(k, o), ActionDrop, "", why)
					return false
				}
				return true
			})
		}
	}

	converted := map[string]int{}        // vhost → queues converted
	keptDurable := map[string][]string{} // vhost → durable classic queues kept classic
	for _, q := range w.Sections[KindQueue] {
		p.transformQueue(q, converted, keptDurable)
	}

	if opts.QueueType == QueueTypeQuorum && !opts.KeepVhostDefaultQueueType {
		for _, v := range w.Sections[KindVhost] {
			name := v.Name()
			if converted[name] == 0 {
				continue
			}
			if dqt := v.Str("default_queue_type"); dqt != "quorum" {
				was := dqt
				if was == "" || was == "undefined" {
					was = "none"
				}
				v.Set("default_queue_type", "quorum")
				if meta := v.Map("metadata"); v.Has("metadata") {
					meta["default_queue_type"] = "quorum"
					v.Set("metadata", meta)
				}
				p.add(KindVhost, name, ActionRewrite, "default queue type "+was+" → quorum",
					"clients that redeclare a converted queue without x-queue-type are refused (PRECONDITION_FAILED inequivalent arg 'x-queue-type') unless the vhost's default queue type is quorum (--keep-vhost-default-queue-type to leave it)")
			}
			if kept := keptDurable[name]; len(kept) > 0 {
				sort.Strings(kept)
				p.add(KindVhost, name, ActionWarn, "classic: "+strings.Join(kept, ", "),
					"these durable queues stay classic in a vhost whose default queue type becomes quorum: clients must declare them with x-queue-type=classic, or the target refuses the declaration")
			}
		}
	}

	p.transformPolicies()
	// The broker's export lists objects in no stable order; the plan reads
	// the same on every run: by kind in dependency order, then by ID.
	rank := map[Kind]int{}
	for i, k := range Kinds {
		rank[k] = i
	}
	sort.SliceStable(p.Changes, func(i, j int) bool {
		a, b := p.Changes[i], p.Changes[j]
		if a.Kind != b.Kind {
			return rank[a.Kind] < rank[b.Kind]
		}
		return a.ID < b.ID
	})
	p.Counts = map[Kind]int{}
	for _, k := range Kinds {
		if n := len(w.Sections[k]); n > 0 {
			p.Counts[k] = n
		}
	}
	return p, nil
}

func (p *Plan) add(k Kind, id string, a Action, detail, reason string) {
	p.Changes = append(p.Changes, Change{Kind: k, ID: id, Action: a, Detail: detail, Reason: reason, Blocking: a == ActionIncompatible})
}

func (p *Plan) transformQueue(q Object, converted map[string]int, keptDurable map[string][]string) {
	opts := p.Options
	id := ID(KindQueue, q)
	if opts.QueueType != QueueTypeQuorum || q.QueueType() != "classic" {
		return
	}
	switch {
	case !q.Bool("durable"):
		p.add(KindQueue, id, ActionKeepClassic, "non-durable", "quorum queues are always durable; a transient queue stays classic")
		return
	case q.Bool("auto_delete"):
		p.add(KindQueue, id, ActionKeepClassic, "auto-delete", "quorum queues cannot be auto-delete; the queue stays classic")
		return
	case q.Bool("exclusive"):
		p.add(KindQueue, id, ActionKeepClassic, "exclusive", "quorum queues cannot be exclusive; the queue stays classic")
		return
	}
	for _, pat := range opts.KeepClassic {
		if ok, _ := path.Match(pat, q.Vhost()+"/"+q.Name()); ok {
			p.add(KindQueue, id, ActionKeepClassic, "--keep-classic "+pat, "asked")
			keptDurable[q.Vhost()] = append(keptDurable[q.Vhost()], q.Name())
			return
		}
	}
	args := q.Arguments()
	bad, reasons := incompatibleArgs(args)
	if len(bad) > 0 {
		detail := argList(args, bad)
		switch opts.Incompatible {
		case IncompatibleAbort:
			p.add(KindQueue, id, ActionIncompatible, detail, strings.Join(reasons, "; "))
			return
		case IncompatibleKeepClassic:
			p.add(KindQueue, id, ActionKeepClassic, detail, strings.Join(reasons, "; ")+" (--incompatible keep-classic)")
			keptDurable[q.Vhost()] = append(keptDurable[q.Vhost()], q.Name())
			return
		case IncompatibleDropArguments:
			for i, a := range bad {
				p.add(KindQueue, id, ActionDropArgument, argList(args, []string{a}), reasons[i]+" (--incompatible drop-arguments)")
				delete(args, a)
			}
		}
	}
	args["x-queue-type"] = "quorum"
	q.Set("arguments", args)
	p.add(KindQueue, id, ActionConvert, "classic → quorum", "durable classic queue: a quorum queue is replicated across the cluster and survives the loss of a node")
	converted[q.Vhost()]++
}

// isMirroringKey reports whether a policy key configures classic queue
// mirroring.
func isMirroringKey(k string) bool { return strings.HasPrefix(k, "ha-") }

func (p *Plan) transformPolicies() {
	w := p.want
	w.filter(KindPolicy, func(pol Object) bool {
		def := pol.Map("definition")
		var keys []string
		for k := range def {
			if isMirroringKey(k) {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return true
		}
		sort.Strings(keys)
		id := ID(KindPolicy, pol)
		detail := argList(def, keys)
		const why = "classic queue mirroring means nothing to quorum queues, is deprecated, and RabbitMQ 4.0 and later refuse it"
		switch p.Options.Mirroring {
		case MirroringDrop:
			p.add(KindPolicy, id, ActionDrop, detail, why+" (--mirroring drop)")
			return false
		case MirroringRewrite:
			for _, k := range keys {
				delete(def, k)
			}
			if len(def) == 0 {
				p.add(KindPolicy, id, ActionDrop, detail, why+"; nothing else is left in the policy (--mirroring rewrite)")
				return false
			}
			pol.Set("definition", def)
			p.add(KindPolicy, id, ActionRewrite, "without "+strings.Join(keys, ", "), why+" (--mirroring rewrite)")
			return true
		default:
			p.add(KindPolicy, id, ActionWarn, detail, why+"; kept as is (--mirroring rewrite|drop to change)")
			return true
		}
	})
}

// filter keeps the objects of kind k for which keep returns true.
func (d *Definitions) filter(k Kind, keep func(Object) bool) {
	objs := d.Sections[k]
	out := objs[:0]
	for _, o := range objs {
		if keep(o) {
			out = append(out, o)
		}
	}
	d.Sections[k] = out
}

// argList renders some keys of a map as "k=v, k=v".
func argList(m map[string]any, keys []string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strings.Trim(canonical(m[k]), `"`)
	}
	return strings.Join(parts, ", ")
}
