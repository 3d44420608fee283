package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
)

// warren runs the CLI in-process and returns its exit code and output.
func warren(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestFlagsAreReadFromEnvironment(t *testing.T) {
	t.Setenv("WARREN_OUTPUT", "json")
	code, out, stderr := warren(t, "lab", "env")
	require.Equal(t, 0, code, stderr)
	var env map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &env), "WARREN_OUTPUT=json should select JSON: %s", out)
	assert.Contains(t, env["WARREN_SOURCE_URL"], "amqp://")
	assert.Contains(t, env["WARREN_TARGET_API"], "http://")
}

func TestBadFlagsExitWithUsageCode(t *testing.T) {
	code, _, stderr := warren(t, "lab", "status", "--output", "yaml")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `--output "yaml"`)

	code, _, _ = warren(t, "lab", "status", "--no-such-flag")
	assert.Equal(t, exitUsage, code)

	t.Setenv("WARREN_OUTPUT", "xml")
	code, _, stderr = warren(t, "lab", "status")
	assert.Equal(t, exitUsage, code, "a bad value from the environment is a usage error too")
	assert.Contains(t, stderr, "xml")
	t.Setenv("WARREN_OUTPUT", "text")

	// lab seed names vhosts and users after --prefix: refused before it
	// touches a broker.
	code, _, stderr = warren(t, "lab", "seed", "--prefix", "nc9 bad/x")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `--prefix "nc9 bad/x"`)
	code, _, stderr = warren(t, "lab", "seed", "--messages", "-5")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "--messages -5")
}

func TestLabStatusReportsEveryNode(t *testing.T) {
	brokertest.New(t) // fails with instructions when the lab is not running
	code, out, stderr := warren(t, "lab", "status", "-o", "json")
	require.Equal(t, 0, code, stderr)
	var nodes []struct {
		ID       string
		AMQPPort int
		State    string `json:"state"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &nodes))
	require.Len(t, nodes, 4)
	for _, n := range nodes {
		assert.Equal(t, "running", n.State, n.ID)
		assert.NotZero(t, n.AMQPPort)
	}
}
