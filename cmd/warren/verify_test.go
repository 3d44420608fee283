package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
)

// verifyArgs points warren verify at the test's target and vhost.
func verifyArgs(e *brokertest.Env, password string, extra ...string) []string {
	var urls []string
	for _, u := range e.Target.AMQP {
		if password != "" {
			u.Password = password
		}
		u.Vhost = "/"
		urls = append(urls, u.String())
	}
	return append([]string{"verify", "--target-url", strings.Join(urls, ","), "--target-api", e.Target.API,
		"--vhost", e.Vhost, "--messages", "3"}, extra...)
}

func TestVerifyPrintsJSONAndPasses(t *testing.T) {
	e := brokertest.New(t)
	code, out, stderr := warren(t, verifyArgs(e, "", "-o", "json", "--check", "health,roundtrip")...)
	require.Equal(t, exitOK, code, stderr)
	var report struct {
		Checks []struct {
			Area, Name, Status, Detail string
			DurationMS                 float64 `json:"duration_ms"`
		}
		Latency struct {
			Samples int     `json:"samples"`
			P50     float64 `json:"p50_ms"`
			P99     float64 `json:"p99_ms"`
		}
		Passed, Failed int
	}
	require.NoError(t, json.Unmarshal([]byte(out), &report), out)
	assert.Zero(t, report.Failed)
	assert.Equal(t, len(report.Checks), report.Passed)
	assert.Equal(t, 3*len(e.Target.AMQP), report.Latency.Samples)
	assert.Positive(t, report.Latency.P99)
	names := map[string]bool{}
	for _, c := range report.Checks {
		names[c.Name] = true
		assert.Contains(t, []string{"health", "roundtrip"}, c.Area)
	}
	assert.True(t, names["round trip "+e.Vhost], "checks: %v", names)
	assert.True(t, names["running nodes"])
}

func TestVerifyFailsWithExitCodeNamingEachCheck(t *testing.T) {
	e := brokertest.New(t)
	code, out, stderr := warren(t, verifyArgs(e, "wrong-password", "--check", "health")...)
	assert.Equal(t, exitVerification, code)
	assert.Contains(t, out, "STATUS")
	assert.Contains(t, out, "FAIL")
	for _, u := range e.Target.AMQP {
		assert.Contains(t, stderr, "amqp login "+u.Host)
	}
	assert.Contains(t, stderr, "running nodes")
	assert.NotContains(t, out+stderr, "wrong-password", "passwords never reach the output")
}

func TestVerifyRejectsBadInput(t *testing.T) {
	e := brokertest.New(t)
	code, _, stderr := warren(t, verifyArgs(e, "", "--check", "health,speed")...)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `unknown check area "speed"`)

	code, _, stderr = warren(t, verifyArgs(e, "", "--drain-report", filepath.Join(t.TempDir(), "none.json"))...)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "--drain-report")

	bad := filepath.Join(t.TempDir(), "report.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"moved": 3}`), 0o644))
	code, _, stderr = warren(t, verifyArgs(e, "", "--drain-report", bad)...)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `no "queues" array`)

	t.Setenv("WARREN_TARGET_URL", "") // in case the lab's variables are exported
	code, _, stderr = warren(t, "verify", "--target-api", e.Target.API)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "--target-url")
}
