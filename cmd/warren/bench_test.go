package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/loadcheck"
)

// bench runs `warren bench` in-process against e's brokers, in e's vhost.
func bench(t *testing.T, e *brokertest.Env, args ...string) (int, string, string) {
	t.Helper()
	all := append([]string{"bench"}, endpointArgs(e)...)
	all = append(all, "--vhost", e.Vhost, "--progress", "none")
	return warren(t, append(all, args...)...)
}

// assertNothingLeft checks that neither side holds a queue in e's vhost:
// the load check deletes its own, and bad input creates none.
func assertNothingLeft(t *testing.T, e *brokertest.Env) {
	t.Helper()
	for _, api := range []*broker.API{e.SourceAPI, e.TargetAPI} {
		qs, err := api.ListQueues(context.Background(), e.Vhost, "name")
		require.NoError(t, err)
		var names []string
		for _, q := range qs {
			names = append(names, q.Name)
		}
		assert.Empty(t, names, "queues left on the %s", api.Endpoint().Name)
	}
}

// tableRows returns the table's rows (the lines under the header) as
// fields, keyed "side/consumers".
func tableRows(t *testing.T, out string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	lines := strings.Split(out, "\n")
	require.NotEmpty(t, lines)
	require.True(t, strings.HasPrefix(lines[0], "SIDE"), "the table comes first:\n%s", out)
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 11 || (f[0] != "source" && f[0] != "target") {
			break
		}
		rows[f[0]+"/"+f[2]] = f
	}
	return rows
}

// One run measures both sides at each consumer count, prints a row per
// round with its counts, rates and percentiles, compares the sides, plots
// them, and leaves no queue behind.
func TestBenchPrintsTableForSourceAndTarget(t *testing.T) {
	e := brokertest.New(t)
	code, out, stderr := bench(t, e, "--consumers", "1,3", "--duration", "1s", "--producers", "1", "--chart", "always")
	require.Equal(t, 0, code, stderr)
	rows := tableRows(t, out)
	require.Len(t, rows, 4, out)
	for _, k := range []string{"source/1", "source/3", "target/1", "target/3"} {
		f := rows[k]
		require.NotNil(t, f, "no row for %s:\n%s", k, out)
		published, confirmed, consumed := atoi(t, f[3]), atoi(t, f[4]), atoi(t, f[5])
		assert.Positive(t, consumed, k)
		assert.LessOrEqual(t, consumed, confirmed, k)
		assert.LessOrEqual(t, confirmed, published, k)
		assert.NotEqual(t, "0", f[6], "%s: throughput", k)
		assert.NotEqual(t, "-", f[9], "%s: p99", k)
	}
	assert.Equal(t, "quorum", rows["target/1"][1], "the target's default queue type")
	assert.Contains(t, out, "1 consumer(s): the target moved")
	assert.Contains(t, out, "3 consumer(s): the target moved")
	assert.Contains(t, out, "target: 1 → 3 consumers changed throughput")
	assert.Contains(t, out, "throughput (msg/s) by consumer count", "--chart always plots")
	assertNothingLeft(t, e)
}

// -o json is the whole report, every field present, and its counts add up.
func TestBenchJSONHasEveryField(t *testing.T) {
	e := brokertest.New(t)
	code, out, stderr := bench(t, e, "--consumers", "1,3", "--count", "200", "--size", "100", "-o", "json")
	require.Equal(t, 0, code, stderr)

	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &raw), out)
	for _, k := range []string{"settings", "rounds", "comparison", "scaling"} {
		assert.Contains(t, raw, k)
	}
	settings := raw["settings"].(map[string]any)
	for _, k := range []string{"vhost", "producers", "consumers", "size_bytes", "rate", "duration_seconds", "count", "queue_type", "in_flight", "prefetch", "work_ms"} {
		assert.Contains(t, settings, k, "settings")
	}
	rounds := raw["rounds"].([]any)
	require.Len(t, rounds, 4)
	for _, r := range rounds {
		m := r.(map[string]any)
		for _, k := range []string{"side", "broker", "consumers", "producers", "queue", "queue_type", "seconds", "published", "confirmed",
			"failed", "republished", "consumed", "duplicates", "throughput_msg_s", "publish_rate_msg_s", "latency", "lag", "error"} {
			assert.Contains(t, m, k, "round %v", m["side"])
		}
		for _, k := range []string{"samples", "p50_ms", "p95_ms", "p99_ms", "max_ms"} {
			assert.Contains(t, m["latency"], k)
		}
	}

	var rep loadcheck.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, e.Vhost, rep.Settings.Vhost)
	for _, rd := range rep.Rounds {
		name := fmt.Sprintf("%s/%d", rd.Side, rd.Consumers)
		assert.EqualValues(t, 200, rd.Published, name)
		assert.EqualValues(t, 200, rd.Confirmed, name)
		assert.EqualValues(t, 200, rd.Consumed, name, "a count round waits for every confirmed message")
		assert.Zero(t, rd.Lag, name)
		assert.Zero(t, rd.Failed, name)
		assert.Empty(t, rd.Error, name)
		assert.Positive(t, rd.Throughput, name)
		assert.Positive(t, rd.PublishRate, name)
		assert.Equal(t, 200, rd.Latency.Samples, name)
		assert.Positive(t, rd.Latency.P50, name)
		assert.LessOrEqual(t, rd.Latency.P50, rd.Latency.P95, name)
		assert.LessOrEqual(t, rd.Latency.P95, rd.Latency.P99, name)
		assert.LessOrEqual(t, rd.Latency.P99, rd.Latency.Max, name)
		assert.True(t, strings.HasPrefix(rd.Queue, loadcheck.QueuePrefix), name)
		assert.NotContains(t, rd.Broker, "guest:", "no credentials in the report")
	}
	assert.Equal(t, "classic", rep.Rounds[0].QueueType, "the lab source's vhost default")
	assert.Equal(t, "quorum", rep.Rounds[2].QueueType)
	require.Len(t, rep.Comparison, 2)
	assert.Positive(t, rep.Comparison[0].Ratio)
	require.Len(t, rep.Scaling, 2)
	assertNothingLeft(t, e)
}

// Bad flags exit 2 before anything is created; a missing vhost exits 3.
func TestBenchRefusesBadFlagsAndCreatesNothing(t *testing.T) {
	e := brokertest.New(t)
	for _, args := range [][]string{
		{"--consumers", ""},
		{"--consumers", "1,,3"},
		{"--consumers", "0"},
		{"--consumers", "3,3"},
		{"--producers", "0"},
		{"--size", "-1"},
		{"--rate", "-10"},
		{"--duration", "0s"},
		{"--count", "0"},
		{"--count", "10", "--duration", "5s"},
		{"--queue-type", "stream"},
		{"--prefetch", "0"},
		{"--in-flight", "0"},
		{"--work", "-1s"},
		{"--progress", "fancy"},
		{"--chart", "maybe"},
		{"--vhost", ""},
	} {
		code, _, stderr := bench(t, e, args...)
		assert.Equal(t, exitUsage, code, "%v: %s", args, stderr)
		if len(args) > 1 && args[1] != "" {
			assert.Contains(t, stderr, args[0], "%v: the error names the flag", args)
		}
	}
	code, _, stderr := bench(t, e, "--vhost", e.Vhost+"-missing", "--count", "10")
	assert.Equal(t, exitPreflight, code, stderr)
	assert.Contains(t, stderr, "has no vhost")
	assertNothingLeft(t, e)
}

// A source with a client attached to the vhost is refused with exit 3, and
// nothing is created on either side; --allow-live runs anyway.
func TestBenchRefusesSourceWithAttachedClient(t *testing.T) {
	e := brokertest.New(t)
	e.Dial(t, e.Source, 0)
	brokertest.Eventually(t, 15*time.Second, func() error {
		conns, err := e.SourceAPI.ListConnections(context.Background(), e.Vhost)
		if err == nil && len(conns) == 0 {
			err = fmt.Errorf("the client's connection is not listed yet")
		}
		return err
	})
	code, _, stderr := bench(t, e, "--consumers", "1", "--count", "50")
	assert.Equal(t, exitPreflight, code, stderr)
	assert.Contains(t, stderr, "--allow-live", "the message says how to go on")
	assert.Contains(t, stderr, "Nothing was created")
	assertNothingLeft(t, e)

	code, out, stderr := bench(t, e, "--consumers", "1", "--count", "50", "--allow-live", "-o", "json")
	require.Equal(t, 0, code, stderr)
	var rep loadcheck.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Len(t, rep.Rounds, 2)
	assert.EqualValues(t, 50, rep.Rounds[0].Consumed)
	assertNothingLeft(t, e)
}

// A source login that cannot see other users' connections, or may not
// declare queues in the vhost, is a preflight failure (exit 3) that says
// what it lacks, and creates nothing.
func TestBenchRefusedDeclareIsPreflight(t *testing.T) {
	e := brokertest.New(t)
	ctx := context.Background()
	user := "wt-bench-" + loadcheckSuffix(e.Vhost)
	require.NoError(t, e.SourceAPI.PutUser(ctx, user, "pw", []string{"management"}))
	t.Cleanup(func() { _ = e.SourceAPI.DeleteUser(context.Background(), user) })
	require.NoError(t, e.SourceAPI.PutPermissions(ctx, e.Vhost, user, broker.Permissions{Configure: "^$", Write: ".*", Read: ".*"}))
	u := e.Source.AMQP[0]
	u.Username, u.Password, u.Vhost = user, "pw", "/"
	args := append(endpointArgs(e), "--source-url", u.String())
	run := func() (int, string, string) {
		return warren(t, append([]string{"bench"}, append(args, "--vhost", e.Vhost, "--progress", "none", "--consumers", "1", "--count", "10")...)...)
	}
	// A management user sees only its own connections: the live check
	// would be blind.
	code, _, stderr := run()
	assert.Equal(t, exitPreflight, code, stderr)
	assert.Contains(t, stderr, "needs the monitoring or administrator tag")

	require.NoError(t, e.SourceAPI.PutUser(ctx, user, "pw", []string{"monitoring"}))
	code, _, stderr = run()
	assert.Equal(t, exitPreflight, code, stderr)
	assert.Contains(t, stderr, "needs configure, write and read permissions")
	assertNothingLeft(t, e)
}

// Stopped half-way (SIGTERM, as Ctrl-C or a pod's end), the load check
// exits 130 and deletes the queue of the round it was in. The CLI runs
// in-process (building the binary takes minutes on a busy machine), so
// the test signals its own process while run() is listening.
func TestBenchInterruptedDeletesItsQueue(t *testing.T) {
	e := brokertest.New(t)
	signalled := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			qs, err := e.SourceAPI.ListQueues(context.Background(), e.Vhost, "name")
			if err == nil && len(qs) > 0 {
				time.Sleep(time.Second) // messages are moving
				signalled <- syscall.Kill(os.Getpid(), syscall.SIGTERM)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		signalled <- fmt.Errorf("the load check had no queue on the source after 30s")
	}()
	code, out, stderr := bench(t, e, "--consumers", "1", "--duration", "60s")
	require.NoError(t, <-signalled)
	assert.Equal(t, exitInterrupted, code, stderr)
	assert.Contains(t, stderr, "nothing of the load check is left")
	assert.Contains(t, out, "source", "the report holds the round it was in")
	assertNothingLeft(t, e)
}

// loadcheckSuffix is the random tail of a test vhost's name.
func loadcheckSuffix(vhost string) string { return vhost[strings.LastIndex(vhost, "-")+1:] }

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err, "%q is not a number", s)
	return n
}
