package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab/fixture"
)

func TestDefinitionsCommands(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	ctx := context.Background()
	t.Cleanup(func() {
		assert.NoError(t, fixture.Remove(context.Background(), e.SourceAPI, e.Vhost))
		assert.NoError(t, fixture.Remove(context.Background(), e.TargetAPI, e.Vhost))
	})
	topo, err := fixture.Apply(ctx, e.SourceAPI, e.Vhost)
	require.NoError(t, err)

	var targets []string
	for i := range e.Target.AMQP {
		targets = append(targets, e.Target.URLWithVhost(i, ""))
	}
	conn := []string{
		"--source-url", e.Source.URLWithVhost(0, ""), "--source-api", e.Source.API,
		"--target-url", strings.Join(targets, ","), "--target-api", e.Target.API,
		"--vhost", strings.Join(topo.Vhosts, ","),
	}
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return warren(t, append(args, conn...)...)
	}

	code, out, stderr := run("definitions", "plan")
	assert.Equal(t, exitConflict, code, stderr)
	assert.Contains(t, out, "INCOMPATIBLE")
	assert.Contains(t, stderr, "jobs.priority")

	code, out, stderr = run("definitions", "plan", "--incompatible", "keep-classic", "-o", "json")
	require.Equal(t, exitOK, code, stderr)
	var planned struct {
		Plan struct {
			Changes []struct{ Kind, ID, Action string }
			Counts  map[string]int
		}
		Check struct {
			Objects []struct{ Kind, ID, Status string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &planned))
	assert.NotEmpty(t, planned.Plan.Changes)
	total := 0
	for _, n := range planned.Plan.Counts {
		total += n
	}
	require.Len(t, planned.Check.Objects, total)
	for _, o := range planned.Check.Objects {
		assert.Equal(t, "new", o.Status, "plan changed nothing: %s %s", o.Kind, o.ID)
	}

	code, out, stderr = run("definitions", "import", "--incompatible", "keep-classic")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, "confirmed")

	code, out, stderr = run("definitions", "import", "--incompatible", "keep-classic", "-o", "json")
	require.Equal(t, exitOK, code, stderr)
	var again struct {
		Result struct {
			Created   map[string]int
			Identical int
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &again))
	assert.Empty(t, again.Result.Created, "a second import creates nothing")
	assert.Equal(t, total, again.Result.Identical)

	// The target now holds quorum queues: a plan that keeps them classic
	// conflicts, and says how to go ahead.
	code, out, stderr = run("definitions", "plan", "--queue-type", "keep")
	assert.Equal(t, exitConflict, code, stderr)
	assert.Contains(t, out, "CONFLICT")
	assert.Contains(t, stderr, "--skip-conflicts")
	code, _, stderr = run("definitions", "import", "--queue-type", "keep", "--skip-conflicts")
	assert.Equal(t, exitOK, code, stderr)

	// A file round trip: export, then plan from the file.
	file := filepath.Join(t.TempDir(), "defs.json")
	code, _, stderr = warren(t, "definitions", "export", "--out-file", file, "--vhost", strings.Join(topo.Vhosts, ","),
		"--source-url", e.Source.URLWithVhost(0, ""), "--source-api", e.Source.API)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stderr, "exported 2 vhost")
	code, _, stderr = run("definitions", "plan", "--file", file, "--incompatible", "keep-classic")
	assert.Equal(t, exitOK, code, stderr)

	// Bad input: usage errors, with nothing read from the brokers.
	code, _, stderr = run("definitions", "plan", "--queue-type", "stream")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `unknown queue type "stream"`)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, data[:len(data)/3], 0o600))
	code, _, stderr = run("definitions", "plan", "--file", file)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "truncated")

	// A wrong password is a preflight failure.
	code, _, stderr = warren(t, "definitions", "plan",
		"--source-url", e.Source.URLWithVhost(0, ""), "--source-api", e.Source.API,
		"--target-url", strings.Join(targets, ","), "--target-api", strings.Replace(e.Target.API, "://", "://"+e.Target.APIUser+":wrong@", 1),
		"--vhost", topo.Vhosts[0], "--incompatible", "keep-classic")
	assert.Equal(t, exitPreflight, code)
	assert.Contains(t, stderr, "refused the login")
	assert.NotContains(t, stderr, ":wrong@")
}
