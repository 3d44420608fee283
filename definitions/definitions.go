// Package definitions moves a RabbitMQ broker's definitions (vhosts, users,
// permissions, policies, exchanges, queues, bindings, runtime and global
// parameters) from a source broker to a target cluster:
//
//   - Export reads them over the HTTP API, Load reads a definitions file (the
//     format the management UI and rabbitmqadmin write, whole-broker or
//     single-vhost);
//   - NewPlan transforms them for the target (classic to quorum queues,
//     mirroring policies, identity parameters, the guest user), recording
//     every change with its reason and every incompatibility that needs a
//     decision;
//   - (*Plan).Check compares the plan with the target, object by object
//     (new, identical or conflict), and runs the preflight checks (version,
//     plugins, permissions), changing nothing;
//   - Import applies the new objects in dependency order and reads the
//     target back to confirm them; a second Import finds everything
//     identical and changes nothing;
//   - Compare reports the differences between two sets of definitions, for
//     verification after a migration.
//
// Objects are kept as the broker wrote them (every field, known or not) so
// that an export→import round trip never drops data: rabbit-hole's
// ExportedDefinitions, for one, loses every runtime parameter (its struct
// tag reads "paramaters").
package definitions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Kind names one section of a definitions document.
type Kind string

// The kinds of definitions, in the order Import applies them: each kind only
// refers to kinds before it (a binding to its exchanges and queue, a
// permission to its user and vhost).
const (
	KindVhost           Kind = "vhost"
	KindUser            Kind = "user"
	KindPermission      Kind = "permission"
	KindTopicPermission Kind = "topic_permission"
	KindParameter       Kind = "parameter" // runtime parameters, operator policies and vhost limits among them
	KindGlobalParameter Kind = "global_parameter"
	KindPolicy          Kind = "policy"
	KindExchange        Kind = "exchange"
	KindQueue           Kind = "queue"
	KindBinding         Kind = "binding"
)

// Kinds lists every kind in dependency order.
var Kinds = []Kind{KindVhost, KindUser, KindPermission, KindTopicPermission, KindParameter,
	KindGlobalParameter, KindPolicy, KindExchange, KindQueue, KindBinding}

// section is the JSON key of each kind in a definitions document.
var section = map[Kind]string{
	KindVhost: "vhosts", KindUser: "users", KindPermission: "permissions",
	KindTopicPermission: "topic_permissions", KindParameter: "parameters",
	KindGlobalParameter: "global_parameters", KindPolicy: "policies",
	KindExchange: "exchanges", KindQueue: "queues", KindBinding: "bindings",
}

// vhostScoped kinds belong to one vhost; the others (users, global
// parameters) are broker-wide.
func (k Kind) vhostScoped() bool {
	return k != KindUser && k != KindGlobalParameter && k != KindVhost
}

// Object is one definitions entry exactly as the broker (or file) wrote it:
// every field, known to warren or not, so that nothing is lost between export
// and import. The accessors read the fields warren reasons about.
type Object map[string]json.RawMessage

// Str returns a string field, or "" when it is absent or not a string.
func (o Object) Str(key string) string {
	var s string
	if raw, ok := o[key]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// Has reports whether the field is present.
func (o Object) Has(key string) bool { _, ok := o[key]; return ok }

// Bool returns a boolean field, false when absent.
func (o Object) Bool(key string) bool {
	var b bool
	if raw, ok := o[key]; ok {
		_ = json.Unmarshal(raw, &b)
	}
	return b
}

// Value decodes a field into Go values (maps, slices, strings, bools, and
// json.Number for numbers, so that integers keep their exact value). It
// returns nil when the field is absent.
func (o Object) Value(key string) any {
	raw, ok := o[key]
	if !ok {
		return nil
	}
	return decode(raw)
}

// Map returns an object-valued field (arguments, definition, value) decoded
// as in Value; an empty map when absent or not an object.
func (o Object) Map(key string) map[string]any {
	m, _ := o.Value(key).(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// Set stores v, encoded as JSON, in field key.
func (o Object) Set(key string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		// Only values decoded from JSON and plain Go values reach here.
		panic(fmt.Sprintf("definitions: encode %s: %v", key, err))
	}
	o[key] = raw
}

// Clone returns a deep copy.
func (o Object) Clone() Object {
	c := make(Object, len(o))
	for k, v := range o {
		c[k] = slices.Clone(v)
	}
	return c
}

// Name is the object's "name" field (empty for permissions and bindings).
func (o Object) Name() string { return o.Str("name") }

// Vhost is the object's "vhost" field.
func (o Object) Vhost() string { return o.Str("vhost") }

// Arguments returns a queue's, exchange's or binding's arguments.
func (o Object) Arguments() map[string]any { return o.Map("arguments") }

// QueueType is a queue's type: its x-queue-type argument, or "classic".
// Brokers write the vhost's default queue type into that argument when a
// queue is declared without one, so the argument is the whole truth.
func (o Object) QueueType() string {
	if t, ok := o.Arguments()["x-queue-type"].(string); ok && t != "" {
		return t
	}
	return "classic"
}

// Tags returns a user's or vhost's tags. Brokers write them either as a list
// or (before 3.9, and in vhost PUT bodies) as one comma-separated string.
func (o Object) Tags() []string {
	var tags []string
	switch v := o.Value("tags").(type) {
	case string:
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	case []any:
		for _, t := range v {
			if s, ok := t.(string); ok && s != "" {
				tags = append(tags, s)
			}
		}
	}
	sort.Strings(tags)
	return tags
}

// ID names the object uniquely within its kind, for tables and comparisons:
// "vhost/name" for most, "vhost/source→destination" for bindings.
func ID(k Kind, o Object) string {
	switch k {
	case KindVhost, KindUser, KindGlobalParameter:
		return o.Name()
	case KindPermission:
		return o.Vhost() + "/" + o.Str("user")
	case KindTopicPermission:
		return o.Vhost() + "/" + o.Str("user") + "/" + o.Str("exchange")
	case KindParameter:
		return o.Vhost() + "/" + o.Str("component") + "/" + o.Name()
	case KindBinding:
		src := o.Str("source")
		if src == "" {
			src = "(default)"
		}
		id := fmt.Sprintf("%s/%s→%s %s", o.Vhost(), src, o.Str("destination_type"), o.Str("destination"))
		if rk := o.Str("routing_key"); rk != "" {
			id += " key " + rk
		}
		if args := o.Arguments(); len(args) > 0 {
			id += " args " + canonical(args)
		}
		return id
	default:
		return o.Vhost() + "/" + o.Name()
	}
}

// Definitions is a whole definitions document. Sections hold the objects in
// the order the broker wrote them; Header holds every top-level field that
// is not a section (rabbit_version, product_name, ... and any the broker
// adds in future), so it too survives a round trip.
type Definitions struct {
	Header map[string]json.RawMessage
	// Sections maps each kind to its objects.
	Sections map[Kind][]Object

	mapped *vhostMapping // set by Load for a single-vhost file
}

// New returns empty definitions.
func New() *Definitions {
	return &Definitions{Header: map[string]json.RawMessage{}, Sections: map[Kind][]Object{}}
}

// Objects returns the objects of one kind.
func (d *Definitions) Objects(k Kind) []Object { return d.Sections[k] }

// Add appends objects of one kind.
func (d *Definitions) Add(k Kind, objs ...Object) {
	d.Sections[k] = append(d.Sections[k], objs...)
}

// Find returns the object of kind k with the given ID.
func (d *Definitions) Find(k Kind, id string) (Object, bool) {
	for _, o := range d.Sections[k] {
		if ID(k, o) == id {
			return o, true
		}
	}
	return nil, false
}

// Len counts every object.
func (d *Definitions) Len() int {
	n := 0
	for _, objs := range d.Sections {
		n += len(objs)
	}
	return n
}

// Version is the RabbitMQ version that wrote the definitions, "" when the
// file does not say.
func (d *Definitions) Version() string {
	for _, k := range []string{"rabbitmq_version", "rabbit_version", "product_version"} {
		var s string
		if raw, ok := d.Header[k]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
			return s
		}
	}
	return ""
}

// Clone returns a deep copy.
func (d *Definitions) Clone() *Definitions {
	c := New()
	c.mapped = d.mapped
	for k, v := range d.Header {
		c.Header[k] = slices.Clone(v)
	}
	for k, objs := range d.Sections {
		for _, o := range objs {
			c.Sections[k] = append(c.Sections[k], o.Clone())
		}
	}
	return c
}

// Only returns a copy holding just the given vhosts: their vhost objects,
// every object inside them, and the users that hold a permission or topic
// permission in one of them. Broker-wide global parameters are left out.
// Tests use it to look only at their own vhosts on a shared broker.
func (d *Definitions) Only(vhosts ...string) *Definitions {
	keep := map[string]bool{}
	for _, v := range vhosts {
		keep[v] = true
	}
	c := New()
	for k, v := range d.Header {
		c.Header[k] = slices.Clone(v)
	}
	users := map[string]bool{}
	for _, k := range Kinds {
		for _, o := range d.Sections[k] {
			switch {
			case k == KindVhost && keep[o.Name()]:
			case k.vhostScoped() && keep[o.Vhost()]:
				if k == KindPermission || k == KindTopicPermission {
					users[o.Str("user")] = true
				}
			default:
				continue
			}
			c.Add(k, o.Clone())
		}
	}
	for _, o := range d.Sections[KindUser] {
		if users[o.Name()] {
			c.Add(KindUser, o.Clone())
		}
	}
	return c
}

// UnmarshalJSON reads a definitions document. Sections must be arrays of
// objects; anything else is an error that names the section.
func (d *Definitions) UnmarshalJSON(data []byte) error {
	var top map[string]json.RawMessage
	if trimmed := bytes.TrimSpace(data); len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("want a JSON object, got %s", truncate(trimmed, 40))
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return err
	}
	*d = *New()
	kindOf := map[string]Kind{}
	for k, s := range section {
		kindOf[s] = k
	}
	for key, raw := range top {
		k, ok := kindOf[key]
		if !ok {
			d.Header[key] = raw
			continue
		}
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			continue
		}
		var objs []Object
		if err := json.Unmarshal(raw, &objs); err != nil {
			return fmt.Errorf("section %q: want an array of objects, got %s", key, truncate(bytes.TrimSpace(raw), 40))
		}
		for i, o := range objs {
			if o == nil {
				return fmt.Errorf("section %q: entry %d is null", key, i)
			}
		}
		d.Sections[k] = objs
	}
	return nil
}

// MarshalJSON writes the document in the layout brokers use: header fields
// first, then every section (empty ones as []), so that rabbitmqctl
// import_definitions and the management UI accept it.
func (d *Definitions) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	keys := make([]string, 0, len(d.Header))
	for k := range d.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	first := true
	write := func(key string, v any) error {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(key)
		buf.Write(kb)
		buf.WriteByte(':')
		vb, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", key, err)
		}
		buf.Write(vb)
		return nil
	}
	for _, k := range keys {
		if err := write(k, d.Header[k]); err != nil {
			return nil, err
		}
	}
	for _, k := range Kinds {
		objs := d.Sections[k]
		if objs == nil {
			objs = []Object{}
		}
		if err := write(section[k], objs); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// decode turns JSON into Go values, numbers as json.Number.
func decode(raw json.RawMessage) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	return v
}

// canonical renders a value as JSON with sorted keys, for IDs and messages.
func canonical(v any) string {
	b, err := json.Marshal(v) // encoding/json sorts map keys
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append(b[:n:n], "..."...)
}

// Union returns now plus every object of earlier that now lacks (by ID).
func Union(earlier, now *Definitions) *Definitions {
	out := now.Clone()
	for _, k := range Kinds {
		for _, o := range earlier.Objects(k) {
			if _, ok := out.Find(k, ID(k, o)); !ok {
				out.Add(k, o.Clone())
			}
		}
	}
	return out
}

// QueuesAndBindingsInto picks from d the queues for which pick(vhost, name)
// is true, with the bindings whose destination they are.
func (d *Definitions) QueuesAndBindingsInto(pick func(vhost, queue string) bool) *Definitions {
	out := New()
	for _, q := range d.Objects(KindQueue) {
		if pick(q.Vhost(), q.Name()) {
			out.Add(KindQueue, q.Clone())
		}
	}
	for _, b := range d.Objects(KindBinding) {
		if b.Str("destination_type") == "queue" && pick(b.Vhost(), b.Str("destination")) {
			out.Add(KindBinding, b.Clone())
		}
	}
	return out
}
