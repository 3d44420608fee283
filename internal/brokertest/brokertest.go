// Package brokertest gives tests real brokers: the source and target of the
// local lab (or of whatever WARREN_SOURCE_URL, WARREN_SOURCE_API,
// WARREN_TARGET_URL and WARREN_TARGET_API name), each with a fresh vhost of
// the test's own that is deleted afterwards, so tests never see each other's
// objects.
//
// When the brokers are not reachable a test fails (never skips) with a
// message that says how to start the lab.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/lab"
)

// Env is one test's view of the brokers.
type Env struct {
	// Source and Target have every AMQP URL pointed at Vhost.
	Source, Target broker.Endpoint
	// SourceAPI and TargetAPI are HTTP API clients of each side.
	SourceAPI, TargetAPI *broker.API
	// Vhost exists on both sides for the length of the test.
	Vhost string
	// Lab is the local lab, for tests that stop or restart nodes.
	Lab *lab.Lab
}

// New returns the brokers with a fresh vhost on each side. Tests that use
// New may run alongside each other, in this package and others.
func New(t testing.TB) *Env {
	t.Helper()
	e := open(t, syscall.LOCK_SH)
	e.Vhost = VhostName(t)
	e.CreateVhost(t, e.Vhost)
	return e
}

// NewDisruptive is New for a test that stops, kills or reconfigures lab
// nodes. It waits until no other test (in any package) is using the brokers,
// keeps them to itself, and brings the lab back up afterwards.
// Disruptive tests must not call t.Parallel.
func NewDisruptive(t testing.TB) *Env {
	t.Helper()
	e := open(t, syscall.LOCK_EX)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := e.Lab.Up(ctx); err != nil {
			t.Errorf("bring the lab back up after a disruptive test: %v", err)
		}
	})
	e.Vhost = VhostName(t)
	e.CreateVhost(t, e.Vhost)
	return e
}

// lockFile serialises disruptive tests against all others, across the test
// binaries that `go test ./...` runs at once.
func lockFile() string { return filepath.Join(os.TempDir(), "warren-brokertest.lock") }

func open(t testing.TB, how int) *Env {
	t.Helper()
	l, err := lab.Default()
	if err != nil {
		t.Fatalf("lab settings: %v", err)
	}
	f, err := os.OpenFile(lockFile(), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("open test lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		t.Fatalf("take test lock: %v", err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock

	env := l.Endpoints()
	get := func(k string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return env[k]
	}
	tlsOpts := broker.TLSOptions{CAFile: os.Getenv("WARREN_CA_FILE"), CertFile: os.Getenv("WARREN_CERT_FILE"),
		KeyFile: os.Getenv("WARREN_KEY_FILE"), ServerName: os.Getenv("WARREN_SERVER_NAME")}
	e := &Env{Lab: l}
	if e.Source, err = broker.ParseEndpoint("source", get("WARREN_SOURCE_URL"), get("WARREN_SOURCE_API"), tlsOpts); err != nil {
		t.Fatal(err)
	}
	if e.Target, err = broker.ParseEndpoint("target", get("WARREN_TARGET_URL"), get("WARREN_TARGET_API"), tlsOpts); err != nil {
		t.Fatal(err)
	}
	// Each target node's own API (the lab's, or WARREN_NODE_API's), unless
	// the variables name another cluster without them.
	if apis := get("WARREN_NODE_API"); apis != "" && (os.Getenv("WARREN_TARGET_API") == "" || os.Getenv("WARREN_NODE_API") != "") {
		e.Target.NodeAPIs = strings.Split(apis, ",")
	}
	e.SourceAPI, e.TargetAPI = mustAPI(t, e.Source), mustAPI(t, e.Target)
	return e
}

func mustAPI(t testing.TB, ep broker.Endpoint) *broker.API {
	t.Helper()
	api, err := ep.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ov, err := api.Overview(ctx)
	if err == nil && ov.RabbitMQVersion == "" {
		err = fmt.Errorf("no RabbitMQ version in /api/overview")
	}
	if err != nil {
		t.Fatalf("the %s broker at %s is not reachable (%v).\n"+
			"Start the local lab with `go run ./cmd/warren lab up` (or run the whole suite with `make test`),\n"+
			"or point WARREN_SOURCE_URL, WARREN_SOURCE_API, WARREN_TARGET_URL and WARREN_TARGET_API at running brokers.",
			ep.Name, ep.API, err)
	}
	return api
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// VhostName returns a vhost name unique to this test run, derived from the
// test's name so leftovers are easy to trace.
func VhostName(t testing.TB) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := unsafe.ReplaceAllString(t.Name(), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return "wt-" + strings.ToLower(name) + "-" + hex.EncodeToString(b)
}

// CreateVhost creates vhost on both sides, grants each side's API user full
// permissions, and deletes it again when the test ends. It also points the
// AMQP URLs of Source and Target at it when it is the Env's own vhost.
func (e *Env) CreateVhost(t testing.TB, vhost string) {
	t.Helper()
	ctx := context.Background()
	for _, api := range []*broker.API{e.SourceAPI, e.TargetAPI} {
		if err := api.PutVhost(ctx, vhost, broker.VhostSettings{}); err != nil {
			t.Fatal(err)
		}
		if err := api.PutPermissions(ctx, vhost, api.Endpoint().APIUser, broker.FullPermissions); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := api.DeleteVhost(context.Background(), vhost); err != nil {
				t.Error(err)
			}
		})
	}
	if vhost == e.Vhost {
		for _, ep := range []*broker.Endpoint{&e.Source, &e.Target} {
			uris := make([]amqp.URI, len(ep.AMQP))
			for i, u := range ep.AMQP {
				u.Vhost = vhost
				uris[i] = u
			}
			ep.AMQP = uris
		}
	}
}

// Dial opens an AMQP connection to node i of ep in the Env's vhost and closes
// it when the test ends.
func (e *Env) Dial(t testing.TB, ep broker.Endpoint, node int) *amqp.Connection {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := ep.DialNode(ctx, node, e.Vhost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Channel opens a channel on a fresh connection to node i of ep.
func (e *Env) Channel(t testing.TB, ep broker.Endpoint, node int) *amqp.Channel {
	t.Helper()
	ch, err := e.Dial(t, ep, node).Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// Eventually polls cond every 200ms until it returns nil or d passes, then
// fails the test with cond's last error. HTTP API counts lag behind the
// broker by the stats interval; use this to wait for them.
func Eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %s: %v", d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
