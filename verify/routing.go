package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
)

// The routing check, binding by binding:
//
//  1. Presence. Every binding of the source (when given) must exist on the
//     target with the same routing key and arguments. Bindings of exclusive
//     or server-named queues are left out: they belong to one connection and
//     are never migrated.
//
//  2. Exercise. No probe may ever reach a user queue. warren simulates
//     RabbitMQ's routing (direct, fanout, topic and headers matching,
//     exchange-to-exchange bindings, alternate exchanges) over the vhost's
//     whole topology before publishing anything, and picks one of two ways:
//
//     - in place: a binding to an exchange E whose probe reaches no user
//       queue, neither through E's bindings nor through any other binding or
//       alternate exchange on the way. warren binds a temporary exclusive
//       server-named queue to E so that it catches the probe, publishes the
//       probe to the binding's source exchange through every node
//       (confirms, mandatory), and expects it in the temporary queue: the
//       message can only have got there through the binding;
//     - on a twin: every other binding (to a user queue, from an internal
//       exchange, or whose probe would also reach a user queue). warren
//       declares a temporary exchange of the source's type, with no other
//       binding and an alternate exchange that does not exist (arguments
//       win over policies, so a user policy's alternate exchange cannot
//       catch an unrouted probe), binds a temporary queue to it with the
//       binding's own key and arguments, and publishes the probe through
//       every node. That proves the target routes this key or these headers
//       as the binding says; step 1 and the listing prove the binding
//       itself is in place. The report says which way was taken and why.
//
//     Exchange types whose routing warren cannot predict (plugins such as
//     x-consistent-hash) are skipped with the reason.
//
// While a binding is exercised (milliseconds), copies of user messages the
// binding routes to E may also reach the temporary queue; they are discarded
// there, and the originals are untouched in the users' queues.

// exchangeInfo and bindingInfo are the exchanges and bindings of
// GET /api/exchanges and /api/bindings, with the routing check's methods.
type (
	exchangeInfo = broker.ExchangeInfo
	bindingInfo  broker.BindingInfo
)

func decodeArgs(raw json.RawMessage) map[string]any {
	m := map[string]any{}
	if len(raw) == 0 {
		return m
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return map[string]any{}
	}
	return m
}

func (b bindingInfo) args() map[string]any { return decodeArgs(b.Arguments) }

// identity names a binding by everything that makes it distinct.
func (b bindingInfo) identity() string {
	args, _ := json.Marshal(b.args()) // map keys marshal sorted
	return strings.Join([]string{b.Source, b.DestinationType, b.Destination, b.RoutingKey, string(args)}, "\x00")
}

// String names the binding in check names, the way users write it.
func (b bindingInfo) String() string {
	s := fmt.Sprintf("exchange %q → %s %q", b.Source, b.DestinationType, b.Destination)
	if b.RoutingKey != "" {
		s += fmt.Sprintf(" key %q", b.RoutingKey)
	}
	if a := b.args(); len(a) > 0 {
		buf, _ := json.Marshal(a)
		s += " args " + string(buf)
	}
	return s
}

// graph is one vhost's routing topology.
type graph struct {
	exchanges map[string]exchangeInfo
	bindings  map[string][]bindingInfo // by source exchange
	policies  map[string]map[string]any
}

func loadGraph(ctx context.Context, api *broker.API, vhost string) (*graph, []bindingInfo, error) {
	exchanges, err := api.ListExchanges(ctx, vhost)
	if err != nil {
		return nil, nil, err
	}
	listed, err := api.ListBindings(ctx, vhost)
	if err != nil {
		return nil, nil, err
	}
	bindings := make([]bindingInfo, len(listed))
	for i, b := range listed {
		bindings[i] = bindingInfo(b)
	}
	policies, err := api.ListPolicies(ctx, vhost)
	if err != nil {
		return nil, nil, err
	}
	g := &graph{exchanges: map[string]exchangeInfo{}, bindings: map[string][]bindingInfo{}, policies: map[string]map[string]any{}}
	for _, x := range exchanges {
		g.exchanges[x.Name] = x
	}
	var user []bindingInfo
	for _, b := range bindings {
		g.bindings[b.Source] = append(g.bindings[b.Source], b)
		if b.Source != "" && !strings.HasPrefix(b.Source, Prefix) && !strings.HasPrefix(b.Destination, Prefix) && !isProbeQueue(b) {
			user = append(user, b)
		}
	}
	for _, p := range policies {
		g.policies[p.Name] = p.Definition
	}
	return g, user, nil
}

// isProbeQueue tells a temporary queue of a concurrent verification (or of
// any client: server-named queues are never users' durable state) from a
// user queue.
func isProbeQueue(b bindingInfo) bool {
	return b.DestinationType == "queue" && strings.HasPrefix(b.Destination, "amq.gen-")
}

// alternates returns the exchange's alternate exchanges, from its arguments
// and from the policy applied to it. Both count: which one wins does not
// matter for safety.
func (g *graph) alternates(x exchangeInfo) []string {
	var out []string
	if ae, ok := decodeArgs(x.Arguments)["alternate-exchange"].(string); ok && ae != "" {
		out = append(out, ae)
	}
	if def, ok := g.policies[x.Policy]; ok {
		if ae, ok := def["alternate-exchange"].(string); ok && ae != "" {
			out = append(out, ae)
		}
	}
	return out
}

// probe is a message as far as routing is concerned.
type probe struct {
	key     string
	headers amqp.Table
}

// matches reports whether exchange type typ routes p through binding b; known
// is false for exchange types warren does not simulate.
func matches(typ string, b bindingInfo, p probe) (match, known bool) {
	switch typ {
	case "direct":
		return b.RoutingKey == p.key, true
	case "fanout":
		return true, true
	case "topic":
		return topicMatch(b.RoutingKey, p.key), true
	case "headers":
		return headersMatch(b.args(), p.headers), true
	}
	return true, false
}

// words splits a routing key as RabbitMQ does: "" has no words, "a." two.
func words(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}

// topicMatch implements the topic exchange: "*" matches one word, "#" zero
// or more.
func topicMatch(pattern, key string) bool { return matchWords(words(pattern), words(key)) }

func matchWords(p, k []string) bool {
	if len(p) == 0 {
		return len(k) == 0
	}
	switch p[0] {
	case "#":
		for i := 0; i <= len(k); i++ {
			if matchWords(p[1:], k[i:]) {
				return true
			}
		}
		return false
	case "*":
		return len(k) > 0 && matchWords(p[1:], k[1:])
	default:
		return len(k) > 0 && k[0] == p[0] && matchWords(p[1:], k[1:])
	}
}

// headersMatch implements the headers exchange of RabbitMQ 3.10: x-match all
// (the default), any, all-with-x and any-with-x; binding keys starting with
// "x-" take part only in the -with-x modes; a null binding value matches any
// value; values match when their type class (number, float, string, bool)
// and value agree. Where warren cannot tell, it answers "matches", which
// only ever makes a probe less likely to be sent.
func headersMatch(args map[string]any, headers amqp.Table) bool {
	mode, _ := args["x-match"].(string)
	withX := strings.HasSuffix(mode, "-with-x")
	anyOf := strings.HasPrefix(mode, "any")
	n, hits := 0, 0
	for k, want := range args {
		if k == "x-match" || (strings.HasPrefix(k, "x-") && !withX) {
			continue
		}
		n++
		got, ok := headers[k]
		if ok && (want == nil || sameValue(want, got)) {
			hits++
		}
	}
	if anyOf {
		return hits > 0
	}
	return hits == n
}

// sameValue compares a binding argument (decoded from JSON with UseNumber)
// with a header value as warren publishes it.
func sameValue(want, got any) bool {
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		return ok && g == w
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	case json.Number:
		switch g := got.(type) {
		case int64:
			i, err := w.Int64()
			return err == nil && !strings.ContainsAny(w.String(), ".eE") && i == g
		case float64:
			f, err := w.Float64()
			return err == nil && strings.ContainsAny(w.String(), ".eE") && f == g
		}
		return false
	}
	return true // tables, arrays: unknown, so assume a match
}

// probeFor builds a message that binding b of an exchange of type typ
// routes: its key with "*" and "#" filled in, or its headers. tag goes into
// a header of its own, which the catching binding matches.
func probeFor(typ string, b bindingInfo, tag string) (probe, error) {
	p := probe{key: b.RoutingKey, headers: amqp.Table{probeHeader: tag}}
	switch typ {
	case "direct", "fanout":
	case "topic":
		ws := words(b.RoutingKey)
		for i, w := range ws {
			if w == "*" || w == "#" {
				ws[i] = "warren-verify"
			}
		}
		p.key = strings.Join(ws, ".")
	case "headers":
		args := b.args()
		mode, _ := args["x-match"].(string)
		withX := strings.HasSuffix(mode, "-with-x")
		for k, v := range args {
			if k == "x-match" || (strings.HasPrefix(k, "x-") && !withX) {
				continue
			}
			switch v := v.(type) {
			case string, bool:
				p.headers[k] = v
			case nil:
				p.headers[k] = "warren-verify"
			case json.Number:
				if strings.ContainsAny(v.String(), ".eE") {
					f, err := v.Float64()
					if err != nil {
						return p, fmt.Errorf("header %s: %w", k, err)
					}
					p.headers[k] = f
				} else {
					i, err := v.Int64()
					if err != nil {
						return p, fmt.Errorf("header %s: %w", k, err)
					}
					p.headers[k] = i
				}
			default:
				return p, fmt.Errorf("header %s holds a %T, which warren does not reproduce", k, v)
			}
		}
	default:
		return p, fmt.Errorf("exchange type %s routes in ways warren cannot predict", typ)
	}
	return p, nil
}

// probeHeader carries the tag that the probe queue's binding matches.
const probeHeader = "warren-verify-probe"

// probeQueueMark stands for the probe queue in simulations, before the
// broker has named it.
const probeQueueMark = "\x00probe"

// catcher is the binding of the probe queue to exchange x that catches p and
// nothing else warren sends.
func catcher(x exchangeInfo, p probe, tag string) (bindingInfo, error) {
	b := bindingInfo{Source: x.Name, Destination: probeQueueMark, DestinationType: "queue", Arguments: json.RawMessage("{}")}
	switch x.Type {
	case "direct", "topic":
		b.RoutingKey = p.key
	case "fanout":
	case "headers":
		raw, _ := json.Marshal(map[string]string{"x-match": "all", probeHeader: tag})
		b.Arguments = raw
	default:
		return b, fmt.Errorf("exchange type %s routes in ways warren cannot predict", x.Type)
	}
	return b, nil
}

// reach simulates publishing p to exchange from, with extra bindings added,
// and returns the queues it would reach. unknown lists exchanges on the way
// whose type warren cannot simulate (it then assumes every binding
// matches).
func (g *graph) reach(from string, p probe, extra []bindingInfo) (queues []string, unknown []string) {
	seenX := map[string]bool{from: true}
	seenUnknown := map[string]bool{}
	seenQ := map[string]bool{}
	work := []string{from}
	for len(work) > 0 {
		name := work[0]
		work = work[1:]
		x, ok := g.exchanges[name]
		if !ok {
			continue // a binding to an exchange that does not exist routes nowhere
		}
		var dests []bindingInfo
		for _, b := range append(g.bindings[name], extraFrom(extra, name)...) {
			m, known := matches(x.Type, b, p)
			if !known && !seenUnknown[name] {
				seenUnknown[name] = true
				unknown = append(unknown, fmt.Sprintf("%q (type %s)", name, x.Type))
			}
			if m {
				dests = append(dests, b)
			}
		}
		if len(dests) == 0 {
			for _, ae := range g.alternates(x) {
				dests = append(dests, bindingInfo{Destination: ae, DestinationType: "exchange"})
			}
		}
		for _, d := range dests {
			if d.DestinationType == "exchange" {
				if !seenX[d.Destination] {
					seenX[d.Destination] = true
					work = append(work, d.Destination)
				}
			} else if !seenQ[d.Destination] {
				seenQ[d.Destination] = true
				queues = append(queues, d.Destination)
			}
		}
	}
	sort.Strings(queues)
	return queues, unknown
}

func extraFrom(extra []bindingInfo, source string) []bindingInfo {
	var out []bindingInfo
	for _, b := range extra {
		if b.Source == source {
			out = append(out, b)
		}
	}
	return out
}

// route is how one binding is exercised.
type route struct {
	probe probe
	// catch binds the temporary queue; its source is where the probe is
	// published.
	catch bindingInfo
	// twin, when set, is the temporary exchange that stands in for the
	// binding's source, and notInPlace says why the source itself was not
	// used.
	twin       *exchangeInfo
	notInPlace string
}

// plan decides how binding b can be verified: in place, on a twin, or not
// at all (skip says why).
func (g *graph) plan(b bindingInfo, tag string) (r route, skip string) {
	x, ok := g.exchanges[b.Source]
	if !ok {
		return r, fmt.Sprintf("source exchange %q is not listed", b.Source)
	}
	p, err := probeFor(x.Type, b, tag)
	if err != nil {
		return r, "present; not exercised: " + err.Error()
	}
	onTwin := func(why string) (route, string) { return g.twinRoute(x, b, p, tag, why) }
	if x.Internal {
		return onTwin(fmt.Sprintf("exchange %q is internal: clients cannot publish to it", x.Name))
	}
	if b.DestinationType != "exchange" {
		return onTwin(fmt.Sprintf("its destination is user queue %q, so any probe it routes would land there", b.Destination))
	}
	e, ok := g.exchanges[b.Destination]
	if !ok {
		return r, fmt.Sprintf("destination exchange %q is not listed", b.Destination)
	}
	catch, err := catcher(e, p, tag)
	if err != nil {
		return onTwin("destination " + err.Error())
	}
	queues, unknown := g.reach(x.Name, p, []bindingInfo{catch})
	if len(unknown) > 0 {
		return onTwin("a probe would pass through " + strings.Join(unknown, ", ") + ", whose routing warren cannot predict")
	}
	var users []string
	caught := false
	for _, q := range queues {
		if q == probeQueueMark {
			caught = true
		} else {
			users = append(users, fmt.Sprintf("%q", q))
		}
	}
	if len(users) > 0 {
		return onTwin("a probe routed by it would also reach user queue(s) " + limit(users, 5))
	}
	if !caught {
		return onTwin("warren found no probe that reaches its destination")
	}
	return route{probe: p, catch: catch}, ""
}

// twinRoute exercises b on a temporary exchange of x's type, bound to the
// temporary queue with b's own key and arguments.
func (g *graph) twinRoute(x exchangeInfo, b bindingInfo, p probe, tag, why string) (route, string) {
	twin := exchangeInfo{Name: Prefix + "twin." + tag, Type: x.Type}
	catch := b
	catch.Source, catch.Destination, catch.DestinationType = twin.Name, probeQueueMark, "queue"
	if m, known := matches(x.Type, catch, p); !m || !known {
		return route{}, "present; not exercised: warren found no probe this binding routes"
	}
	return route{probe: p, catch: catch, twin: &twin, notInPlace: why}, ""
}

func (s *session) routing(ctx context.Context) {
	for _, vhost := range s.vhosts {
		s.routingVhost(ctx, vhost)
	}
}

func (s *session) routingVhost(ctx context.Context, vhost string) {
	g, bindings, err := loadGraph(ctx, s.target, vhost)
	if err != nil {
		s.check(ctx, AreaRouting, "routing "+vhost, func() outcome { return failf("%v", err) })
		return
	}
	if s.source != nil {
		s.presence(ctx, vhost, bindings)
	}
	sort.Slice(bindings, func(i, j int) bool { return bindings[i].String() < bindings[j].String() })
	if len(bindings) == 0 {
		s.check(ctx, AreaRouting, "routing "+vhost, func() outcome { return skipf("no bindings between user exchanges and queues") })
		return
	}
	var conns []*amqp.Connection
	defer func() { closeAll(conns) }()
	for i, b := range bindings {
		s.check(ctx, AreaRouting, fmt.Sprintf("binding %s: %s", vhost, b), func() outcome {
			tag := fmt.Sprintf("%s-%d", s.probeID, i)
			r, why := g.plan(b, tag)
			if why != "" {
				return skipf("%s", why)
			}
			if conns == nil {
				var errs []string
				if conns, errs = s.conns(ctx, vhost); len(up(conns)) == 0 {
					return failf("no node accepted a connection to vhost %s: %s", vhost, strings.Join(errs, "; "))
				}
			}
			return s.exercise(ctx, conns, b, r, tag)
		})
	}
}

// presence fails a check for every binding of the source that the target
// lacks.
func (s *session) presence(ctx context.Context, vhost string, target []bindingInfo) {
	listed, err := s.source.ListBindings(ctx, vhost)
	if broker.IsNotFound(err) {
		return // a vhost of the target only: nothing is expected of it
	}
	src := make([]bindingInfo, len(listed))
	for i, b := range listed {
		src[i] = bindingInfo(b)
	}
	var exclusive []broker.QueueInfo
	if err == nil {
		exclusive, err = s.source.ListQueues(ctx, vhost, "name", "exclusive")
	}
	if err != nil {
		s.check(ctx, AreaRouting, "bindings expected from source "+vhost, func() outcome { return failf("read the source's bindings: %v", err) })
		return
	}
	skipQ := map[string]bool{}
	for _, q := range exclusive {
		if q.Exclusive {
			skipQ[q.Name] = true
		}
	}
	have := map[string]bool{}
	for _, b := range target {
		have[b.identity()] = true
	}
	for _, b := range src {
		if b.Source == "" || strings.HasPrefix(b.Source, Prefix) || strings.HasPrefix(b.Destination, Prefix) || isProbeQueue(b) ||
			(b.DestinationType == "queue" && skipQ[b.Destination]) || have[b.identity()] {
			continue
		}
		s.check(ctx, AreaRouting, fmt.Sprintf("binding %s: %s", vhost, b), func() outcome {
			return failf("missing on the target: the source has this binding, so messages the source routed this way would go elsewhere (or nowhere) on the target")
		})
	}
}

// exercise declares a temporary exclusive queue (and the twin exchange, when
// r has one), binds it with r.catch, and publishes the probe to the catch's
// source exchange through every node; the probe must arrive each time.
func (s *session) exercise(ctx context.Context, conns []*amqp.Connection, b bindingInfo, r route, tag string) outcome {
	p, catch := r.probe, r.catch
	nodes := up(conns)
	// The probe queue lives on the last reachable node, so that most
	// publishes cross the cluster to reach it.
	home := nodes[len(nodes)-1]
	cch, err := conns[home].Channel()
	if err != nil {
		return failf("open a channel: %v", err)
	}
	defer cch.Close()
	q, err := cch.QueueDeclare("", false, true, true, false, amqp.Table{"x-dead-letter-exchange": Prefix + "nowhere"})
	if err != nil {
		return failf("declare a temporary exclusive queue: %v", err)
	}
	defer func() { _, _ = cch.QueueDelete(q.Name, false, false, false) }()
	if r.twin != nil {
		// Auto-delete: gone with the temporary queue's binding even if
		// warren dies before its own delete.
		if err := cch.ExchangeDeclare(r.twin.Name, r.twin.Type, false, true, false, false,
			amqp.Table{"alternate-exchange": Prefix + "nowhere"}); err != nil {
			return failf("declare a temporary %s exchange: %v", r.twin.Type, err)
		}
		defer func() { _ = cch.ExchangeDelete(r.twin.Name, false, false) }()
	}
	if err := cch.QueueBind(q.Name, catch.RoutingKey, catch.Source, false, amqpTable(catch.args())); err != nil {
		return failf("bind the temporary queue to exchange %q: %v", catch.Source, err)
	}
	deliveries, err := cch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		return failf("consume from the temporary queue: %v", err)
	}
	var routed []string
	discarded := 0
	for _, n := range nodes {
		pch, err := conns[n].Channel()
		if err != nil {
			return failf("node %d: open a channel: %v", n+1, err)
		}
		err = func() error {
			defer pch.Close()
			if err := pch.Confirm(false); err != nil {
				return err
			}
			returns := pch.NotifyReturn(make(chan amqp.Return, 1))
			id := fmt.Sprintf("%s-node%d", tag, n+1)
			headers := amqp.Table{"warren-verify": id}
			for k, v := range p.headers {
				headers[k] = v
			}
			dc, err := pch.PublishWithDeferredConfirmWithContext(ctx, catch.Source, p.key, true, false, amqp.Publishing{
				Headers: headers, AppId: "warren-verify", MessageId: id, Type: Prefix + "routing-probe", Body: []byte("warren verify routing probe"),
			})
			if err != nil {
				return fmt.Errorf("publish to exchange %q: %w", catch.Source, err)
			}
			wctx, cancel := context.WithTimeout(ctx, s.opts.Wait)
			defer cancel()
			for {
				d, err := receive(wctx, deliveries, returns)
				if err != nil {
					return err
				}
				if d.MessageId == id {
					break
				}
				discarded++ // a copy of other traffic the catching binding matched
			}
			if ok, err := dc.WaitContext(wctx); err != nil || !ok {
				return fmt.Errorf("no publisher confirm (ack %v, %v)", ok, err)
			}
			return nil
		}()
		if err != nil {
			if r.twin != nil {
				return failf("published to a temporary %s exchange bound like this binding, with key %q, through node %d: %v (the target does not route what this binding says it routes)",
					r.twin.Type, p.key, n+1, err)
			}
			return failf("published to exchange %q with key %q through node %d: %v (the probe can only reach the temporary queue through this binding)", b.Source, p.key, n+1, err)
		}
		routed = append(routed, fmt.Sprint(n+1))
	}
	if r.twin != nil {
		return passf("present; routes on a twin: a probe with key %q published through nodes %s to a temporary %s exchange, bound to a temporary queue with this binding's key and arguments, arrived every time. Not exercised on %q itself: %s",
			p.key, strings.Join(routed, ","), r.twin.Type, b.Source, r.notInPlace)
	}
	detail := fmt.Sprintf("a probe published to %q with key %q through nodes %s reached a temporary queue bound to %q every time",
		b.Source, p.key, strings.Join(routed, ","), b.Destination)
	if discarded > 0 {
		detail += fmt.Sprintf(" (%d copies of other messages were discarded from the temporary queue)", discarded)
	}
	return passf("%s", detail)
}

// amqpTable turns JSON-decoded arguments back into AMQP field values.
func amqpTable(m map[string]any) amqp.Table {
	t := amqp.Table{}
	for k, v := range m {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				t[k] = i
			} else if f, err := n.Float64(); err == nil {
				t[k] = f
			}
			continue
		}
		t[k] = v
	}
	return t
}
