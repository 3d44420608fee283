package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab"
)

// badInput is the world of the bad-input suite: the lab with a vhost of
// its own on both sides (a queue with a backlog and a binding on the
// source, the queue alone on the target, so that a migration, an import
// or a drain that went ahead would change the target), users with too
// few tags, and definitions files.
type badInput struct {
	e            *brokertest.Env
	srcCh, dstCh *amqp.Channel
	vhost        string
	files        map[string]string
	tls          lab.TLSFiles
	nodes        []lab.Node
	state        string
}

// The suite compares the brokers before and after each case through the
// objects the case could touch: every name a case uses starts with the
// suite's own vhost name (unique to the run), so filtering each broker's
// GET /api/definitions to those names is the whole of what the case could
// change, while other tests keep using the shared lab at the same time.
// Taking the lab exclusively (brokertest.NewDisruptive) would compare the
// whole document, but would wait for every other broker test of `go test
// ./...` and hold them all up for the suite's length.

// snapshot is both brokers' definitions of every vhost, user and global
// parameter whose name starts with the suite's vhost (objects sorted by
// ID), and the depth of the queue on both sides: equal snapshots mean the
// case changed nothing on either.
func (b *badInput) snapshot(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("target %s\nsource %s\nsource depth %d, target depth %d",
		b.definitions(t, b.e.TargetAPI), b.definitions(t, b.e.SourceAPI), b.depth(t, b.srcCh), b.depth(t, b.dstCh))
}

// definitions is GET /api/definitions of api, filtered to the suite's
// names.
func (b *badInput) definitions(t *testing.T, api *broker.API) string {
	t.Helper()
	d := definitions.New()
	require.NoError(t, api.GetDefinitions(context.Background(), d))
	mine := func(name string) bool { return strings.HasPrefix(name, b.vhost) }
	var vhosts []string
	for _, v := range d.Objects(definitions.KindVhost) {
		if mine(v.Name()) {
			vhosts = append(vhosts, v.Name())
		}
	}
	only := d.Only(vhosts...)
	only.Sections[definitions.KindUser] = nil
	for _, k := range []definitions.Kind{definitions.KindUser, definitions.KindGlobalParameter} {
		for _, o := range d.Objects(k) {
			if mine(o.Name()) {
				only.Add(k, o)
			}
		}
	}
	for _, k := range definitions.Kinds {
		objs := only.Sections[k]
		sort.Slice(objs, func(i, j int) bool { return definitions.ID(k, objs[i]) < definitions.ID(k, objs[j]) })
	}
	doc, err := only.MarshalJSON()
	require.NoError(t, err)
	return string(doc)
}

// depth is the queue's depth, by a passive declare (current, unlike the
// HTTP API's count).
func (b *badInput) depth(t *testing.T, ch *amqp.Channel) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive("work", true, false, false, false, nil)
	require.NoError(t, err)
	return q.Messages
}

func newBadInput(t *testing.T) *badInput {
	e := brokertest.New(t)
	if e.Target.API != e.Lab.TargetEndpoint().API {
		t.Skip("the bad-input suite uses the lab's ports and certificates; WARREN_TARGET_* names another cluster")
	}
	b := &badInput{e: e, vhost: e.Vhost, files: map[string]string{}, tls: e.Lab.TLS(), nodes: e.Lab.NodesOf(lab.Target), state: t.TempDir()}
	ctx := context.Background()

	// The source: a queue with a backlog, bound to an exchange.
	src := e.Channel(t, e.Source, 0)
	_, err := src.QueueDeclare("work", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, src.ExchangeDeclare("jobs", "direct", true, false, false, false, nil))
	require.NoError(t, src.QueueBind("work", "job", "jobs", false, nil))
	for i := 0; i < 3; i++ {
		require.NoError(t, src.PublishWithContext(ctx, "", "work", false, false, amqp.Publishing{Body: []byte("m"), DeliveryMode: amqp.Persistent}))
	}
	// The target: the queue alone, as an earlier import left it.
	b.srcCh, b.dstCh = src, e.Channel(t, e.Target, 0)
	_, err = b.dstCh.QueueDeclare("work", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)

	// Users with too few tags (none at all, monitoring, management), each
	// with every permission in the vhost.
	for _, u := range []struct {
		api  *broker.API
		name string
		tag  string
	}{{e.TargetAPI, b.vhost + "-none", ""}, {e.TargetAPI, b.vhost + "-mon", "monitoring"}, {e.TargetAPI, b.vhost + "-mgmt", "management"}, {e.SourceAPI, b.vhost + "-smgmt", "management"}} {
		var tags []string
		if u.tag != "" {
			tags = []string{u.tag}
		}
		require.NoError(t, u.api.PutUser(ctx, u.name, "pw", tags))
		require.NoError(t, u.api.PutPermissions(ctx, b.vhost, u.name, broker.FullPermissions))
		t.Cleanup(func() { _ = u.api.DeleteUser(context.Background(), u.name) })
	}
	// An exchange the target holds otherwise than a file says.
	require.NoError(t, e.TargetAPI.PutExchange(ctx, b.vhost, "events", broker.ExchangeSettings{Type: "fanout", Durable: true}))

	dir := t.TempDir()
	v := b.vhost
	q := func(vhost, name, durable string, args string) string {
		return fmt.Sprintf(`{"name":%q,"vhost":%q,"durable":%s,"auto_delete":false,"arguments":%s}`, name, vhost, durable, args)
	}
	for name, doc := range map[string]string{
		// The two files: a queue in an unknown vhost after a valid
		// vhost and exchange; a durable flag written as a string.
		"unknown-vhost.json": fmt.Sprintf(`{"vhosts":[{"name":%q}],"exchanges":[{"name":"x","vhost":%[1]q,"type":"direct","durable":true,"auto_delete":false,"internal":false,"arguments":{}}],"queues":[%s,%s]}`,
			v+"-pv", q(v+"-pv", "okq", "true", "{}"), q(v+"-nope", "badq", "true", "{}")),
		"durable-yes.json":  fmt.Sprintf(`{"vhosts":[{"name":%q}],"queues":[%s]}`, v+"-dy", q(v+"-dy", "q", `"yes"`, "{}")),
		"priority-300.json": fmt.Sprintf(`{"vhosts":[{"name":%q}],"queues":[%s]}`, v+"-pr", q(v+"-pr", "q", "true", `{"x-max-priority":300}`)),
		"ttl-string.json":   fmt.Sprintf(`{"vhosts":[{"name":%q}],"queues":[%s]}`, v+"-ttl", q(v+"-ttl", "q", "true", `{"x-message-ttl":"60000"}`)),
		"binding-to-nothing.json": fmt.Sprintf(`{"vhosts":[{"name":%q}],"exchanges":[{"name":"x","vhost":%[1]q,"type":"direct","durable":true,"auto_delete":false,"arguments":{}}],
			"bindings":[{"vhost":%[1]q,"source":"x","destination":"ghost","destination_type":"queue","routing_key":"k","arguments":{}}]}`, v+"-bd"),
		"permission-no-user.json": fmt.Sprintf(`{"vhosts":[{"name":%q}],"permissions":[{"user":%q,"vhost":%[1]q,"configure":".*","write":".*","read":".*"}]}`, v+"-pu", v+"-ghost"),
		"user-no-tags.json":       fmt.Sprintf(`{"users":[{"name":%q,"password_hash":"","hashing_algorithm":"rabbit_password_hashing_sha256"}]}`, v+"-notags"),
		"policy-apply-to.json": fmt.Sprintf(`{"vhosts":[{"name":%q}],"policies":[{"vhost":%[1]q,"name":"p","pattern":".*","apply-to":"everything","priority":0,"definition":{"max-length":1}}]}`,
			v+"-pa"),
		"conflict.json":    fmt.Sprintf(`{"exchanges":[{"name":"events","vhost":%q,"type":"topic","durable":true,"auto_delete":false,"internal":false,"arguments":{}}]}`, v),
		"truncated.json":   fmt.Sprintf(`{"vhosts":[{"name":%q}],"queues":[{"name":"q","vhost":`, v+"-tr"),
		"not-json.json":    "vhosts:\n  - name: " + v + "-yaml\n",
		"no-sections.json": `{"name":"not definitions"}`,
	} {
		b.files[name] = filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(b.files[name], []byte(doc), 0o600))
	}
	b.files["missing.json"] = filepath.Join(dir, "missing.json")
	b.files["garbage.pem"] = filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(b.files["garbage.pem"], []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"), 0o600))
	return b
}

// urls renders the target's AMQP URLs: scheme, user and password, and the
// nodes' ports (plain or TLS).
func (b *badInput) urls(scheme, user, pass string, tlsPorts bool, nodes ...int) string {
	if len(nodes) == 0 {
		nodes = []int{0, 1, 2}
	}
	var out []string
	for _, i := range nodes {
		port := b.nodes[i].AMQPPort
		if tlsPorts {
			port = b.nodes[i].AMQPSPort()
		}
		out = append(out, fmt.Sprintf("%s://%s:%s@localhost:%d/", scheme, user, pass, port))
	}
	return strings.Join(out, ",")
}

// args is a command line: the command, the suite's brokers and vhost
// unless set overrides them (an empty value drops the flag), then extra.
func (b *badInput) args(command string, set map[string]string, extra ...string) []string {
	flags := map[string]string{
		"source-url": b.e.Source.URLWithVhost(0, "/"), "source-api": b.e.Source.API,
		"target-url": b.urls("amqp", lab.TargetUser, lab.TargetPassword, false), "target-api": b.e.Target.API,
	}
	switch command {
	case "migrate", "drain":
		flags["vhost"], flags["state-dir"], flags["progress"] = b.vhost, b.state, "none"
	case "verify":
		flags["vhost"], flags["state-dir"], flags["messages"] = b.vhost, b.state, "2"
	case "definitions import":
		delete(flags, "source-url")
		delete(flags, "source-api")
	}
	for k, v := range set {
		if v == "" {
			delete(flags, k)
		} else {
			flags[k] = v
		}
	}
	out := strings.Fields(command)
	keys := make([]string, 0, len(flags))
	for k := range flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, "--"+k, flags[k])
	}
	return append(out, extra...)
}

type badCase struct {
	name   string
	args   func(b *badInput) []string
	code   int
	phrase string
}

// envCase is a bad input from the environment (every flag also comes
// from WARREN_<FLAG>), or one with several problems at once.
type envCase struct {
	badCase
	env map[string]string
	// also are more phrases the output must hold: one table reports
	// every finding, not the first alone.
	also []string
}

func envCases() []envCase {
	return []envCase{
		{badCase{"drain: WARREN_PARALLEL=0", func(b *badInput) []string { return b.args("drain", nil) }, exitUsage, "--parallel 0"},
			map[string]string{"WARREN_PARALLEL": "0"}, nil},
		{badCase{"migrate: WARREN_VHOST=''", func(b *badInput) []string { return b.args("migrate", map[string]string{"vhost": ""}) }, exitUsage, "--vhost: an empty value"},
			map[string]string{"WARREN_VHOST": ""}, nil},
		{badCase{"migrate: five problems at once, one table", func(b *badInput) []string {
			u := b.urls("amqp", lab.TargetUser, lab.TargetPassword, false, 0)
			return b.args("migrate", map[string]string{"target-url": u + "," + u},
				"--parallel", "0", "--settle", "-1s", "--queue-type", "stream", "--expect-nodes", "0")
		}, exitUsage, "--parallel 0"}, nil, []string{"--settle -1s", `unknown queue type "stream"`, "--expect-nodes 0", "all reach node"}},
		{badCase{"definitions import: a garbage CA and a broken file, both reported", func(b *badInput) []string {
			return b.args("definitions import", nil, "--file", b.files["durable-yes.json"], "--ca-file", b.files["garbage.pem"])
		}, exitUsage, "--ca-file"}, nil, []string{`"durable" is the string "yes"`}},
	}
}

func badCases() []badCase {
	// Shorthands for the cases' command lines.
	migrate := func(set map[string]string, extra ...string) func(*badInput) []string {
		return func(b *badInput) []string { return b.args("migrate", set, extra...) }
	}
	drain := func(set map[string]string, extra ...string) func(*badInput) []string {
		return func(b *badInput) []string { return b.args("drain", set, extra...) }
	}
	verify := func(set map[string]string, extra ...string) func(*badInput) []string {
		return func(b *badInput) []string { return b.args("verify", set, extra...) }
	}
	importFile := func(file string, set map[string]string, extra ...string) func(*badInput) []string {
		return func(b *badInput) []string {
			return b.args("definitions import", set, append([]string{"--file", b.files[file]}, extra...)...)
		}
	}
	target := func(f func(b *badInput) string) func(*badInput) map[string]string {
		return func(b *badInput) map[string]string { return map[string]string{"target-url": f(b)} }
	}
	with := func(cmd func(map[string]string, ...string) func(*badInput) []string, set func(*badInput) map[string]string, extra ...string) func(*badInput) []string {
		return func(b *badInput) []string { return cmd(set(b), extra...)(b) }
	}
	tlsFile := func(cmd func(map[string]string, ...string) func(*badInput) []string, flags func(b *badInput) []string) func(*badInput) []string {
		return func(b *badInput) []string { return cmd(nil, flags(b)...)(b) }
	}
	return []badCase{
		// Wrong URLs and passwords.
		{"migrate: wrong target password", with(migrate, target(func(b *badInput) string { return b.urls("amqp", lab.TargetUser, "wrong", false) })),
			exitPreflight, "check the user name and password"},
		{"migrate: wrong source password", migrate(map[string]string{"source-url": "amqp://guest:wrong@127.0.0.1:5700/"}), exitPreflight, "check the user name and password"},
		{"migrate: target API unreachable", migrate(map[string]string{"target-api": "http://127.0.0.1:1"}), exitPreflight, "unreachable"},
		{"migrate: unparseable target URL", migrate(map[string]string{"target-url": "amqp://admin:50%off@localhost:5701/"}), exitUsage, "cannot be parsed"},
		{"migrate: no target URL", migrate(map[string]string{"target-url": ""}), exitUsage, "no AMQP URL given"},
		{"migrate: target API not HTTP", migrate(map[string]string{"target-api": "amqp://127.0.0.1:15701"}), exitUsage, "want http://host:port"},
		{"migrate: source is the target", func(b *badInput) []string {
			return b.args("migrate", map[string]string{"source-url": b.urls("amqp", lab.TargetUser, lab.TargetPassword, false, 0), "source-api": b.e.Target.API})
		}, exitUsage, "the source and the target are the same broker"},
		{"drain: wrong target password", with(drain, target(func(b *badInput) string { return b.urls("amqp", lab.TargetUser, "wrong", false) })),
			exitPreflight, "check the user name and password"},
		{"definitions import: wrong target password", func(b *badInput) []string {
			return b.args("definitions import", map[string]string{"target-url": b.urls("amqp", lab.TargetUser, "wrong", false)}, "--file", b.files["conflict.json"])
		}, exitPreflight, "check the user name and password"},
		{"drain: source is the target", func(b *badInput) []string {
			return b.args("drain", map[string]string{"source-url": b.urls("amqp", lab.TargetUser, lab.TargetPassword, false, 0), "source-api": b.e.Target.API})
		}, exitUsage, "the source and the target are the same broker"},
		// TLS: amqps:// on plain ports, plain on TLS ports, files.
		{"definitions import: amqps URLs on plain ports", func(b *badInput) []string {
			return b.args("definitions import", map[string]string{"target-url": b.urls("amqps", lab.TargetUser, lab.TargetPassword, false)}, "--file", b.files["conflict.json"])
		}, exitPreflight, "does not speak TLS"},
		{"migrate: amqps URLs on plain ports", with(migrate, target(func(b *badInput) string { return b.urls("amqps", lab.TargetUser, lab.TargetPassword, false) })),
			exitPreflight, "does not speak TLS"},
		{"drain: amqps URLs on plain ports", with(drain, target(func(b *badInput) string { return b.urls("amqps", lab.TargetUser, lab.TargetPassword, false) })),
			exitPreflight, "does not speak TLS"},
		{"migrate: https API on a plain port", migrate(map[string]string{"target-api": "https://127.0.0.1:15701"}), exitPreflight, "must start with http://"},
		{"migrate: amqp URLs on TLS ports", with(migrate, target(func(b *badInput) string { return b.urls("amqp", lab.TargetUser, lab.TargetPassword, true) })),
			exitPreflight, "must start with amqps://"},
		{"migrate: TLS with a CA that signed nothing", func(b *badInput) []string {
			return b.args("migrate", map[string]string{"target-url": b.urls("amqps", lab.TargetUser, lab.TargetPassword, true)}, "--ca-file", b.tls.OtherCA)
		}, exitPreflight, "not signed by a CA in --ca-file"},
		{"migrate: missing --ca-file", tlsFile(migrate, func(b *badInput) []string { return []string{"--ca-file", b.files["missing.json"]} }), exitUsage, "--ca-file"},
		{"migrate: garbage --ca-file", tlsFile(migrate, func(b *badInput) []string { return []string{"--ca-file", b.files["garbage.pem"]} }), exitUsage, "--ca-file"},
		{"migrate: --cert-file without --key-file", tlsFile(migrate, func(b *badInput) []string { return []string{"--cert-file", b.tls.ClientCert} }),
			exitUsage, "needs both --cert-file and --key-file"},
		{"drain: a key that is not the certificate's", tlsFile(drain, func(b *badInput) []string {
			return []string{"--cert-file", b.tls.ClientCert, "--key-file", b.tls.ServerKey}
		}), exitUsage, "is not the key of --cert-file"},
		{"verify: garbage --ca-file", tlsFile(verify, func(b *badInput) []string { return []string{"--ca-file", b.files["garbage.pem"]} }), exitUsage, "--ca-file"},
		{"definitions import: garbage --cert-file", func(b *badInput) []string {
			return b.args("definitions import", nil, "--file", b.files["conflict.json"], "--cert-file", b.files["garbage.pem"], "--key-file", b.tls.ClientKey)
		}, exitUsage, "--cert-file"},
		// Target URLs that do not name distinct nodes, node counts.
		{"migrate: one URL three times", with(migrate, target(func(b *badInput) string {
			u := b.urls("amqp", lab.TargetUser, lab.TargetPassword, false, 0)
			return u + "," + u + "," + u
		})), exitUsage, "all reach node"},
		{"migrate: one node as 127.0.0.1 and localhost", with(migrate, target(func(b *badInput) string {
			u := b.urls("amqp", lab.TargetUser, lab.TargetPassword, false, 0, 1)
			return u + "," + strings.Replace(strings.Split(u, ",")[0], "localhost", "127.0.0.1", 1)
		})), exitUsage, "all reach node"},
		{"verify: one URL three times", with(verify, target(func(b *badInput) string {
			u := b.urls("amqp", lab.TargetUser, lab.TargetPassword, false, 1)
			return u + "," + u + "," + u
		})), exitUsage, "all reach node"},
		{"migrate: two URLs for three nodes", with(migrate, target(func(b *badInput) string {
			return b.urls("amqp", lab.TargetUser, lab.TargetPassword, false, 0, 1)
		})), exitPreflight, "no URL reaches"},
		{"drain: one URL for three nodes", with(drain, target(func(b *badInput) string {
			return b.urls("amqp", lab.TargetUser, lab.TargetPassword, false, 2)
		})), exitPreflight, "names one URL"},
		{"migrate: --expect-nodes 5 against 3 nodes", migrate(nil, "--expect-nodes", "5"), exitPreflight, "--expect-nodes 5, but the target runs 3"},
		{"migrate: --expect-nodes 0", migrate(nil, "--expect-nodes", "0"), exitUsage, "--expect-nodes 0"},
		// Numeric flags out of range, never silently replaced.
		{"drain: --parallel 0", drain(nil, "--parallel", "0"), exitUsage, "--parallel 0"},
		{"migrate: --parallel -5", migrate(nil, "--parallel", "-5"), exitUsage, "--parallel -5"},
		{"drain: --prefetch -1", drain(nil, "--prefetch", "-1"), exitUsage, "--prefetch -1"},
		{"drain: --prefetch 0", drain(nil, "--prefetch", "0"), exitUsage, "--prefetch 0"},
		{"drain: --prefetch 70000", drain(nil, "--prefetch", "70000"), exitUsage, "16 bits"},
		{"drain: --settle -1s", drain(nil, "--settle", "-1s"), exitUsage, "--settle -1s"},
		{"migrate: --stall-timeout 0", migrate(nil, "--stall-timeout", "0"), exitUsage, "--stall-timeout 0s"},
		{"verify: --messages 0", verify(map[string]string{"messages": "0"}), exitUsage, "--messages 0"},
		{"verify: --messages -3", verify(map[string]string{"messages": "-3"}), exitUsage, "--messages -3"},
		{"verify: --expect-nodes 0", verify(nil, "--expect-nodes", "0"), exitUsage, "--expect-nodes 0"},
		{"drain: --parallel not a number", drain(nil, "--parallel", "four"), exitUsage, "invalid argument"},
		// Empty lists are refused, never read as "all".
		{"drain: --vhost ''", drain(map[string]string{"vhost": ""}, "--vhost", ""), exitUsage, "--vhost: an empty value"},
		{"migrate: --vhost ''", migrate(map[string]string{"vhost": ""}, "--vhost", ""), exitUsage, "--vhost: an empty value"},
		{"verify: --vhost ''", verify(map[string]string{"vhost": ""}, "--vhost", ""), exitUsage, "--vhost: an empty value"},
		{"definitions import: --vhost ''", importFile("conflict.json", nil, "--vhost", ""), exitUsage, "--vhost: an empty value"},
		{"verify: --check ''", verify(nil, "--check", ""), exitUsage, "--check: an empty value"},
		{"migrate: --keep-classic ''", migrate(nil, "--keep-classic", ""), exitUsage, "--keep-classic: an empty value"},
		// Unknown vhosts and bogus enums.
		{"migrate: unknown vhost", migrate(map[string]string{"vhost": ""}, "--vhost", "no-such-vhost-i11"), exitUsage, `no vhost "no-such-vhost-i11"`},
		{"drain: unknown vhost", drain(map[string]string{"vhost": ""}, "--vhost", "no-such-vhost-i11"), exitUsage, `no vhost "no-such-vhost-i11"`},
		{"migrate: --queue-type stream", migrate(nil, "--queue-type", "stream"), exitUsage, `unknown queue type "stream"`},
		{"migrate: --incompatible maybe", migrate(nil, "--incompatible", "maybe"), exitUsage, `"maybe"`},
		{"migrate: --mirroring off", migrate(nil, "--mirroring", "off"), exitUsage, `"off"`},
		{"drain: --shovel-side middle", drain(nil, "--shovel-side", "middle"), exitUsage, "--shovel-side"},
		{"drain: --progress fancy", drain(nil, "--progress", "fancy"), exitUsage, `--progress "fancy"`},
		{"drain: --forget without --abort", drain(nil, "--forget"), exitUsage, "--forget goes with --abort"},
		{"verify: --check health,speed", verify(nil, "--check", "health,speed"), exitUsage, `unknown check area "speed"`},
		{"verify: unparseable --service-url", verify(nil, "--service-url", "amqp://u:50%off@host:5672/"), exitUsage, "--service-url"},
		{"verify: missing --drain-report", func(b *badInput) []string { return b.args("verify", nil, "--drain-report", b.files["missing.json"]) },
			exitUsage, "--drain-report"},
		// Broken definitions files: refused before anything is sent.
		{"import: queue in an unknown vhost after a valid vhost and exchange", importFile("unknown-vhost.json", nil), exitUsage, "-nope\" is neither in the definitions nor on the target"},
		{`import: "durable": "yes"`, importFile("durable-yes.json", nil), exitUsage, `"durable" is the string "yes", must be true or false`},
		{"import: x-max-priority 300", importFile("priority-300.json", nil), exitUsage, "x-max-priority is 300, must be at most 255"},
		{"import: x-message-ttl a string", importFile("ttl-string.json", nil), exitUsage, `x-message-ttl is the string "60000"`},
		{"import: binding to a missing queue", importFile("binding-to-nothing.json", nil), exitUsage, `queue "ghost" is in neither`},
		{"import: permission of a missing user", importFile("permission-no-user.json", nil), exitUsage, "-ghost\" is neither in the definitions nor on the target"},
		{"import: user without tags", importFile("user-no-tags.json", nil), exitUsage, `no "tags" field`},
		{"import: policy apply-to", importFile("policy-apply-to.json", nil), exitUsage, `"apply-to" is "everything"`},
		{"import: truncated file", importFile("truncated.json", nil), exitUsage, "truncated"},
		{"import: not JSON", importFile("not-json.json", nil), exitUsage, "not valid JSON"},
		{"import: JSON without sections", importFile("no-sections.json", nil), exitUsage, "not a RabbitMQ definitions file"},
		{"import: missing file", importFile("missing.json", nil), exitUsage, "no such file"},
		{"import: type conflict with the target", importFile("conflict.json", nil), exitConflict, "already exist on the target with other settings"},
		// Logins without the tags the command's calls need.
		{"import: monitoring-only target user", func(b *badInput) []string {
			return b.args("definitions import", map[string]string{"target-url": b.urls("amqp", b.vhost+"-mon", "pw", false)}, "--file", b.files["conflict.json"])
		}, exitPreflight, "importing definitions needs the administrator tag"},
		{"migrate: target user without any tag", func(b *badInput) []string {
			return b.args("migrate", map[string]string{"target-url": b.urls("amqp", b.vhost+"-none", "pw", false)})
		}, exitPreflight, "has none of the tags the HTTP API needs"},
		{"import: target user without any tag", func(b *badInput) []string {
			return b.args("definitions import", map[string]string{"target-url": b.urls("amqp", b.vhost+"-none", "pw", false)}, "--file", b.files["conflict.json"])
		}, exitPreflight, "has none of the tags the HTTP API needs"},
		{"migrate: monitoring-only target user", func(b *badInput) []string {
			return b.args("migrate", map[string]string{"target-url": b.urls("amqp", b.vhost+"-mon", "pw", false)})
		}, exitPreflight, "needs the administrator tag: grant it with `rabbitmqctl set_user_tags"},
		{"drain: management-only source user", func(b *badInput) []string {
			return b.args("drain", map[string]string{"source-url": fmt.Sprintf("amqp://%s:pw@127.0.0.1:5700/", b.vhost+"-smgmt")})
		}, exitPreflight, "seeing every client attached to the source needs the monitoring tag"},
		{"verify: management-only target user", func(b *badInput) []string {
			return b.args("verify", map[string]string{"target-url": b.urls("amqp", b.vhost+"-mgmt", "pw", false), "source-url": "", "source-api": ""})
		}, exitPreflight, "checking node health needs the monitoring tag"},
		{"verify: management-only target user, with the definitions check", func(b *badInput) []string {
			return b.args("verify", map[string]string{"target-url": b.urls("amqp", b.vhost+"-mgmt", "pw", false)})
		}, exitPreflight, "reading the target's definitions (--check definitions) needs the administrator tag"},
	}
}

// Every bad input gets a clear error, the exit code of its class, and
// changes nothing on the target (nor on the source). Each case runs the
// warren binary, with no WARREN_* variable but the case's own.
func TestBadInputChangesNothing(t *testing.T) {
	b := newBadInput(t)
	var cases []envCase
	for _, c := range badCases() {
		cases = append(cases, envCase{badCase: c})
	}
	cases = append(cases, envCases()...)
	require.GreaterOrEqual(t, len(cases), 40)
	brokertest.WarrenBinary(t) // built once, before the first case's snapshot
	start := time.Now()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var env []string
			for k, v := range c.env {
				env = append(env, k+"="+v)
			}
			before := b.snapshot(t)
			args := c.args(b)
			r := brokertest.Run(t, brokertest.BareEnv(env...), args...)
			out := r.Stdout + r.Stderr
			assert.Equal(t, c.code, r.Code, "warren %s\n%s", strings.Join(args, " "), out)
			assert.Contains(t, out, c.phrase)
			for _, p := range c.also {
				assert.Contains(t, out, p)
			}
			if len(c.also) > 0 {
				assert.Regexp(t, `PREFLIGHT +RESULT +DETAIL`, r.Stdout, "the findings' table")
				for _, p := range append([]string{c.phrase}, c.also...) {
					assert.Equal(t, 1, strings.Count(r.Stderr, p), "%q is one finding, reported once:\n%s", p, r.Stderr)
				}
			}
			if !strings.Contains(c.phrase, "user name and password") {
				assert.NotContains(t, out, "check the user name and password", "only a wrong password is called one")
			}
			assert.NotContains(t, out, ":wrong@", "passwords are never printed")
			assert.NotContains(t, out, "admin:admin@", "passwords are never printed")
			assert.NotContains(t, out, "panic")
			assert.Equal(t, before, b.snapshot(t), "the brokers changed")
		})
	}
	t.Logf("%d bad inputs in %s", len(cases), time.Since(start).Round(time.Second))
}
