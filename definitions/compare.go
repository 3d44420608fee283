package definitions

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
)

// Difference types.
const (
	// Missing: an object of want is not in got.
	Missing = "missing"
	// Differs: the object is in both, with different fields.
	Differs = "differs"
	// Unexpected: got holds an object, inside one of want's vhosts, that
	// want does not.
	Unexpected = "unexpected"
)

// Difference is one way in which two sets of definitions differ.
type Difference struct {
	Kind   Kind        `json:"kind"`
	ID     string      `json:"id"`
	Type   string      `json:"type"` // Missing, Differs or Unexpected
	Fields []FieldDiff `json:"fields,omitempty"`
}

// FieldDiff is one field that differs: what was wanted and what was found
// (nil when absent).
type FieldDiff struct {
	Field string `json:"field"`
	Want  any    `json:"want"`
	Got   any    `json:"got"`
}

func (f FieldDiff) String() string {
	return fmt.Sprintf("%s: want %s, got %s", f.Field, show(f.Want), show(f.Got))
}

func (d Difference) String() string {
	s := fmt.Sprintf("%s %s %s", d.Kind, d.ID, d.Type)
	if len(d.Fields) > 0 {
		parts := make([]string, len(d.Fields))
		for i, f := range d.Fields {
			parts[i] = f.String()
		}
		s += ": " + strings.Join(parts, "; ")
	}
	return s
}

func show(v any) string {
	if v == nil {
		return "none"
	}
	return canonical(v)
}

// Compare reports how got differs from want: every object of want that got
// lacks or holds with other fields, and every object got holds inside one of
// want's vhosts that want lacks. Broker-wide objects that only got has
// (users, global parameters, other vhosts), and the permissions of users
// that want does not know, are not differences: a target has its own admin
// user and identity, and RabbitMQ grants the user that creates a vhost
// full permissions on it. Fields are compared by meaning, not
// spelling: an absent field equals its default (arguments {}, tags [],
// apply-to "all", ...), numbers compare by value, tags in any order, and a
// queue without x-queue-type is classic.
//
// verify uses it as Compare(plan.Want().Only(vhosts...), exported), and
// Import uses it to confirm what it imported.
func Compare(want, got *Definitions) []Difference {
	var out []Difference
	vhosts := map[string]bool{}
	for _, v := range want.Sections[KindVhost] {
		vhosts[v.Name()] = true
	}
	users := map[string]bool{}
	for _, u := range want.Sections[KindUser] {
		users[u.Name()] = true
	}
	for _, k := range []Kind{KindPermission, KindTopicPermission} {
		for _, o := range want.Sections[k] {
			users[o.Str("user")] = true
		}
	}
	for _, k := range Kinds {
		have := index(k, got.Sections[k])
		wanted := map[string]bool{}
		for _, w := range want.Sections[k] {
			id := ID(k, w)
			wanted[id] = true
			g, ok := have[id]
			if !ok {
				out = append(out, Difference{Kind: k, ID: id, Type: Missing})
				continue
			}
			if fd := diffObject(k, w, g); len(fd) > 0 {
				out = append(out, Difference{Kind: k, ID: id, Type: Differs, Fields: fd})
			}
		}
		if !k.vhostScoped() {
			continue
		}
		for _, g := range got.Sections[k] {
			if (k == KindPermission || k == KindTopicPermission) && !users[g.Str("user")] {
				continue // a target user's own access, like the user itself
			}
			if id := ID(k, g); vhosts[g.Vhost()] && !wanted[id] {
				out = append(out, Difference{Kind: k, ID: id, Type: Unexpected})
			}
		}
	}
	return out
}

func index(k Kind, objs []Object) map[string]Object {
	m := make(map[string]Object, len(objs))
	for _, o := range objs {
		m[ID(k, o)] = o
	}
	return m
}

// ignored fields are bookkeeping, not definitions: vhost "metadata" repeats
// description, tags and default_queue_type (read through vhostField).
var ignored = map[Kind]map[string]bool{
	KindVhost: {"metadata": true},
}

// known fields are compared even when only got has them; any other field
// that only got has is something a newer broker writes and want's broker
// did not, and is not a difference.
var known = map[string]bool{
	"durable": true, "auto_delete": true, "internal": true, "arguments": true, "type": true,
	"password_hash": true, "hashing_algorithm": true, "tags": true, "limits": true,
	"configure": true, "write": true, "read": true, "value": true, "pattern": true,
	"apply-to": true, "definition": true, "priority": true, "description": true,
	"default_queue_type": true,
}

// diffObject compares two objects of kind k field by field.
func diffObject(k Kind, want, got Object) []FieldDiff {
	fields := map[string]bool{}
	for f := range want {
		fields[f] = true
	}
	for f := range got {
		if known[f] {
			fields[f] = true
		}
	}
	if k == KindVhost {
		for _, f := range []string{"description", "tags", "default_queue_type"} {
			fields[f] = true
		}
	}
	names := make([]string, 0, len(fields))
	for f := range fields {
		if !ignored[k][f] {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	var out []FieldDiff
	for _, f := range names {
		w, g := normalized(k, want, f), normalized(k, got, f)
		if !equal(w, g) {
			out = append(out, FieldDiff{Field: f, Want: w, Got: g})
		}
	}
	return out
}

// normalized reads field f of o and maps the spellings of "nothing" to one
// value, so that comparisons see meaning rather than layout.
func normalized(k Kind, o Object, f string) any {
	var v any
	if k == KindVhost {
		v = vhostField(o, f)
	} else {
		v = o.Value(f)
	}
	switch f {
	case "type":
		if k == KindQueue && v == nil {
			return o.QueueType() // newer brokers write the type beside x-queue-type
		}
	case "tags":
		t := Object{"tags": mustJSON(v)}.Tags()
		if t == nil {
			t = []string{}
		}
		out := make([]any, len(t))
		for i, s := range t {
			out[i] = s
		}
		return out
	case "arguments", "limits":
		m, _ := v.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		if k == KindQueue && f == "arguments" && m["x-queue-type"] == "classic" {
			m = clone(m)
			delete(m, "x-queue-type")
		}
		return m
	case "auto_delete", "internal":
		if v == nil {
			return false
		}
	case "apply-to":
		if v == nil || v == "" {
			return "all"
		}
	case "priority":
		if v == nil {
			return json.Number("0")
		}
	case "description":
		if v == nil {
			return ""
		}
	case "default_queue_type":
		// No default means classic: declaring without x-queue-type gives a
		// classic queue either way.
		if v == nil || v == "undefined" || v == "" {
			return "classic"
		}
	}
	return v
}

// vhostField reads a vhost field from the top level or, as newer brokers
// also write it, from "metadata".
func vhostField(o Object, f string) any {
	if o.Has(f) {
		return o.Value(f)
	}
	if m, ok := o.Value("metadata").(map[string]any); ok {
		return m[f]
	}
	return nil
}

func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// equal compares decoded JSON values; numbers compare by value, so 5, 5.0
// and 5e0 are equal.
func equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		rx, okx := new(big.Rat).SetString(string(x))
		ry, oky := new(big.Rat).SetString(string(y))
		return okx && oky && rx.Cmp(ry) == 0
	default:
		return a == b
	}
}
