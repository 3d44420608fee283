package definitions

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// What RabbitMQ 3.10's definitions import (rabbit_definitions.erl, v3.10.8)
// does with each field, and so what Validate refuses before anything is
// sent. The import hands fields to the functions that declare each object
// without checking them first, and a wrong one fails part-way through a
// document, after the objects before it were created:
//
//   - queues: durable and auto_delete must be booleans (amqqueue:new has
//     is_boolean guards: "durable": "yes" or a missing field is a
//     function_clause); x-arguments are checked as a queue.declare checks
//     them (rabbit_amqqueue:declare_args/0);
//   - exchanges: type, durable and auto_delete are stored as given, so a
//     string or a missing value makes a broken exchange record;
//   - users need tags (else tags_not_present) and not both password and
//     password_hash; permissions need all three patterns;
//   - policies: pattern is a string, definition an object, priority a
//     number, apply-to all, exchanges or queues;
//   - objects in a vhost that does not exist fail with no_such_vhost, a
//     permission of a missing user with no_such_user, and a binding whose
//     exchange or queue is missing is silently not created.

type fieldType int

const (
	tString fieldType = iota
	tBool
	tObject
	tNumber
	tInteger
	tTags // a comma-separated string or a list of strings
	tAny
)

func (t fieldType) String() string {
	return [...]string{"a string", "true or false", "a JSON object", "a number", "an integer", "a string or a list of strings", "any value"}[t]
}

type field struct {
	name     string
	t        fieldType
	required bool
	enum     []string
}

var schema = map[Kind][]field{
	KindVhost: {{name: "name", required: true}, {name: "description"}, {name: "tags", t: tTags}, {name: "metadata", t: tObject},
		{name: "tracing", t: tBool}, {name: "default_queue_type", enum: []string{"classic", "quorum", "stream"}}},
	KindUser: {{name: "name", required: true}, {name: "password"}, {name: "password_hash"}, {name: "tags", t: tTags, required: true},
		{name: "hashing_algorithm", enum: []string{"rabbit_password_hashing_sha256", "rabbit_password_hashing_sha512", "rabbit_password_hashing_md5"}},
		{name: "limits", t: tObject}},
	KindPermission: {{name: "user", required: true}, {name: "vhost", required: true},
		{name: "configure", required: true}, {name: "write", required: true}, {name: "read", required: true}},
	KindTopicPermission: {{name: "user", required: true}, {name: "vhost", required: true}, {name: "exchange", required: true},
		{name: "write", required: true}, {name: "read", required: true}},
	KindParameter: {{name: "vhost", required: true}, {name: "component", required: true}, {name: "name", required: true},
		{name: "value", t: tAny, required: true}},
	KindGlobalParameter: {{name: "name", required: true}, {name: "value", t: tAny, required: true}},
	KindPolicy: {{name: "vhost", required: true}, {name: "name", required: true}, {name: "pattern", required: true},
		{name: "definition", t: tObject, required: true}, {name: "priority", t: tNumber},
		{name: "apply-to", enum: []string{"all", "exchanges", "queues"}}},
	KindExchange: {{name: "vhost", required: true}, {name: "name", required: true}, {name: "type", required: true},
		{name: "durable", t: tBool, required: true}, {name: "auto_delete", t: tBool, required: true},
		{name: "internal", t: tBool}, {name: "arguments", t: tObject}},
	KindQueue: {{name: "vhost", required: true}, {name: "name", required: true},
		{name: "durable", t: tBool, required: true}, {name: "auto_delete", t: tBool, required: true},
		{name: "arguments", t: tObject}},
	KindBinding: {{name: "vhost", required: true}, {name: "source", required: true}, {name: "destination", required: true},
		{name: "destination_type", required: true, enum: []string{"queue", "exchange"}},
		{name: "routing_key", required: true}, {name: "arguments", t: tObject}},
}

// Validate checks every object against what RabbitMQ 3.10's definitions
// import accepts: required fields, each field's JSON type, the values of
// enumerated fields, and queue arguments as queue.declare checks them. It
// returns one line per problem, naming the object, the field, what it
// holds and what it must hold; none when the definitions may be imported.
func Validate(d *Definitions) []string {
	var out []string
	for _, k := range Kinds {
		for _, o := range d.Sections[k] {
			who := fmt.Sprintf("%s %s", k, ID(k, o))
			for _, f := range schema[k] {
				raw, ok := o[f.name]
				if !ok || isNull(raw) {
					if f.required {
						out = append(out, fmt.Sprintf("%s: no %q field (%s)", who, f.name, f.t))
					}
					continue
				}
				if msg := checkType(raw, f.t); msg != "" {
					out = append(out, fmt.Sprintf("%s: %q is %s, must be %s", who, f.name, msg, f.t))
					continue
				}
				if len(f.enum) > 0 {
					if s := o.Str(f.name); !slices.Contains(f.enum, s) {
						out = append(out, fmt.Sprintf("%s: %q is %q, must be one of %s", who, f.name, s, strings.Join(f.enum, ", ")))
					}
				}
			}
			switch k {
			case KindUser:
				if o.Has("password") && o.Has("password_hash") {
					out = append(out, fmt.Sprintf("%s: has both \"password\" and \"password_hash\"; keep one", who))
				}
			case KindQueue:
				out = append(out, queueArguments(who, o)...)
			case KindVhost:
				if dqt, ok := o.Map("metadata")["default_queue_type"].(string); ok && !slices.Contains([]string{"classic", "quorum", "stream", "undefined"}, dqt) {
					out = append(out, fmt.Sprintf("%s: metadata.default_queue_type is %q, must be classic, quorum or stream", who, dqt))
				}
			}
		}
	}
	return out
}

func isNull(raw json.RawMessage) bool { return strings.TrimSpace(string(raw)) == "null" }

// checkType describes raw when it is not of type t, else returns "".
func checkType(raw json.RawMessage, t fieldType) string {
	v := decode(raw)
	ok := false
	switch t {
	case tAny:
		return ""
	case tString:
		_, ok = v.(string)
	case tBool:
		_, ok = v.(bool)
	case tObject:
		_, ok = v.(map[string]any)
	case tNumber:
		_, ok = v.(json.Number)
	case tInteger:
		n, isNum := v.(json.Number)
		_, err := n.Int64()
		ok = isNum && err == nil
	case tTags:
		switch x := v.(type) {
		case string:
			ok = true
		case []any:
			ok = true
			for _, e := range x {
				if _, s := e.(string); !s {
					ok = false
				}
			}
		}
	}
	if ok {
		return ""
	}
	return describeValue(v)
}

func describeValue(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case json.Number:
		return "the number " + x.String()
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// maxExpiry is the largest TTL or expiry RabbitMQ accepts: ten years in
// milliseconds (rabbit_misc:check_expiry/1).
const maxExpiry = 315_360_000_000

// queueArguments checks x-arguments as rabbit_amqqueue:check_declare_arguments
// does in 3.10 (declare_args/0). Unknown arguments are left to the broker,
// which ignores them.
func queueArguments(who string, q Object) []string {
	args := q.Arguments()
	var out []string
	bad := func(arg, format string, a ...any) {
		out = append(out, fmt.Sprintf("%s: argument %s %s", who, arg, fmt.Sprintf(format, a...)))
	}
	integer := func(arg string, min, max int64) {
		v, ok := args[arg]
		if !ok {
			return
		}
		n, isNum := v.(json.Number)
		i, err := n.Int64()
		switch {
		case !isNum || err != nil:
			bad(arg, "is %s, must be an integer", describeValue(v))
		case i < min:
			bad(arg, "is %d, must be at least %d", i, min)
		case max > 0 && i > max:
			bad(arg, "is %d, must be at most %d", i, max)
		}
	}
	oneOf := func(arg string, values ...string) {
		v, ok := args[arg]
		if !ok {
			return
		}
		if s, isStr := v.(string); !isStr || !slices.Contains(values, s) {
			bad(arg, "is %s, must be one of %s", describeValue(v), strings.Join(values, ", "))
		}
	}
	str := func(arg string) {
		if v, ok := args[arg]; ok {
			if _, isStr := v.(string); !isStr {
				bad(arg, "is %s, must be a string", describeValue(v))
			}
		}
	}
	integer("x-expires", 1, maxExpiry)
	integer("x-message-ttl", 0, maxExpiry)
	for _, a := range []string{"x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes", "x-stream-max-segment-size-bytes"} {
		integer(a, 0, 0)
	}
	integer("x-max-priority", 0, 255)
	integer("x-quorum-initial-group-size", 1, 0)
	integer("x-initial-cluster-size", 1, 0)
	integer("x-delivery-limit", 0, 0)
	if v, ok := args["x-queue-version"]; ok {
		if n, isNum := v.(json.Number); !isNum || (n.String() != "1" && n.String() != "2") {
			bad("x-queue-version", "is %s, must be 1 or 2", describeValue(v))
		}
	}
	str("x-dead-letter-exchange")
	str("x-dead-letter-routing-key")
	if _, ok := args["x-dead-letter-routing-key"]; ok {
		if _, dlx := args["x-dead-letter-exchange"]; !dlx {
			bad("x-dead-letter-routing-key", "is set without x-dead-letter-exchange, which RabbitMQ refuses")
		}
	}
	oneOf("x-dead-letter-strategy", "at-most-once", "at-least-once")
	oneOf("x-overflow", "drop-head", "reject-publish", "reject-publish-dlx")
	oneOf("x-queue-mode", "default", "lazy")
	oneOf("x-queue-type", "classic", "quorum", "stream")
	oneOf("x-queue-leader-locator", "client-local", "balanced", "random", "least-leaders")
	if v, ok := args["x-single-active-consumer"]; ok {
		if _, isBool := v.(bool); !isBool {
			bad("x-single-active-consumer", "is %s, must be true or false", describeValue(v))
		}
	}
	if v, ok := args["x-max-age"]; ok {
		if s, isStr := v.(string); !isStr || !validMaxAge(s) {
			bad("x-max-age", "is %s, must be a positive number followed by Y, M, D, h, m or s (\"7D\")", describeValue(v))
		}
	}
	return out
}

func validMaxAge(s string) bool {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i <= 0 || strings.Trim(s[:i], "0") == "" {
		return false
	}
	return slices.Contains([]string{"Y", "M", "D", "h", "m", "s"}, s[i:])
}

// builtinExchanges exist in every vhost from its creation.
var builtinExchanges = []string{"", "amq.default", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "amq.rabbitmq.trace"}

// References checks that every object the definitions refer to exists in
// them or on the target (have): each object's vhost, each permission's
// user, each binding's exchange and destination. It returns one line per
// missing object, saying where it should come from.
func References(want, have *Definitions) []string {
	vhosts := map[string]bool{}
	users := map[string]bool{}
	exchanges := map[string]bool{} // vhost\x00name
	queues := map[string]bool{}
	for _, d := range []*Definitions{want, have} {
		if d == nil {
			continue
		}
		for _, v := range d.Sections[KindVhost] {
			vhosts[v.Name()] = true
		}
		for _, u := range d.Sections[KindUser] {
			users[u.Name()] = true
		}
		for _, x := range d.Sections[KindExchange] {
			exchanges[x.Vhost()+"\x00"+x.Name()] = true
		}
		for _, q := range d.Sections[KindQueue] {
			queues[q.Vhost()+"\x00"+q.Name()] = true
		}
	}
	var out []string
	missingVhost := map[string][]string{}
	for _, k := range Kinds {
		if !k.vhostScoped() {
			continue
		}
		for _, o := range want.Sections[k] {
			if v := o.Vhost(); !vhosts[v] {
				missingVhost[v] = append(missingVhost[v], fmt.Sprintf("%s %s", k, ID(k, o)))
				continue
			}
			switch k {
			case KindPermission, KindTopicPermission:
				if u := o.Str("user"); !users[u] {
					out = append(out, fmt.Sprintf("%s %s: user %q is neither in the definitions nor on the target: add the user to the file, or create it first", k, ID(k, o), u))
				}
			case KindBinding:
				v := o.Vhost()
				if src := o.Str("source"); !exchanges[v+"\x00"+src] && !slices.Contains(builtinExchanges, src) {
					out = append(out, fmt.Sprintf("binding %s: exchange %q is in neither the definitions nor the target's vhost %s", ID(k, o), src, v))
				}
				dst, typ := o.Str("destination"), o.Str("destination_type")
				switch {
				case typ == "queue" && !queues[v+"\x00"+dst]:
					out = append(out, fmt.Sprintf("binding %s: queue %q is in neither the definitions nor the target's vhost %s", ID(k, o), dst, v))
				case typ == "exchange" && !exchanges[v+"\x00"+dst] && !slices.Contains(builtinExchanges, dst):
					out = append(out, fmt.Sprintf("binding %s: exchange %q is in neither the definitions nor the target's vhost %s", ID(k, o), dst, v))
				}
			}
		}
	}
	names := make([]string, 0, len(missingVhost))
	for v := range missingVhost {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		objs := missingVhost[v]
		out = append(out, fmt.Sprintf("vhost %q is neither in the definitions nor on the target, and %d object(s) belong to it (%s): add the vhost to the file, or create it first (rabbitmqctl add_vhost %s)",
			v, len(objs), limitList(objs, 5), v))
	}
	return out
}

func limitList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}
