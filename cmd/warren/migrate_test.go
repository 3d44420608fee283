package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab/fixture"
	"github.com/warrenmq/warren/migrate"
)

func TestMigrateCommand(t *testing.T) {
	e := brokertest.New(t)
	ctx := context.Background()
	prefix := brokertest.VhostName(t)
	t.Cleanup(func() {
		assert.NoError(t, fixture.Remove(context.Background(), e.SourceAPI, prefix))
		assert.NoError(t, fixture.Remove(context.Background(), e.TargetAPI, prefix))
	})
	topo, err := fixture.Apply(ctx, e.SourceAPI, prefix)
	require.NoError(t, err)
	backlog, err := topo.PublishBacklog(ctx, e.Source, 5)
	require.NoError(t, err)
	stateDir := t.TempDir()
	args := append([]string{"migrate", "--vhost", strings.Join(topo.Vhosts, ","), "--progress", "none",
		"--state-dir", stateDir}, endpointArgs(e)...)

	code, stdout, stderr := warren(t, append(args, "--dry-run", "--incompatible", "keep-classic")...)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "dry run: nothing changed")
	assert.Contains(t, stdout, "classic → quorum", "the plan is shown")

	code, stdout, _ = warren(t, args...)
	assert.Equal(t, exitConflict, code, "priority and lazy queues need a decision")
	assert.Contains(t, stdout, "migration stopped")

	code, stdout, stderr = warren(t, append(args, "--incompatible", "keep-classic", "-o", "json")...)
	require.Equal(t, exitOK, code, stderr)
	var sum migrate.Summary
	require.NoError(t, json.Unmarshal([]byte(stdout), &sum))
	require.Len(t, sum.Phases, 5)
	for _, p := range sum.Phases {
		assert.Equal(t, "ok", p.Status, "%s: %s", p.Phase, p.Detail)
	}
	// verify afterwards, without restating the plan's choices: it expects
	// what the migration recorded, including the auto-delete queue its
	// drain removed from the source.
	verifyArgs := append([]string{"verify", "--vhost", strings.Join(topo.Vhosts, ","), "--check", "definitions", "--state-dir", stateDir}, endpointArgs(e)...)
	code, stdout, stderr = warren(t, verifyArgs...)
	assert.Equal(t, exitOK, code, "%s\n%s", stdout, stderr)
	code, _, stderr = warren(t, append(verifyArgs[:len(verifyArgs):len(verifyArgs)], "--state-dir", t.TempDir())...)
	assert.Equal(t, exitVerification, code, "without the migration's state the auto-delete queue is unexpected and the choices unknown: %s", stderr)

	total := 0
	for _, n := range backlog.Count() {
		total += n
	}
	assert.Equal(t, total, sum.Drain.Messages, "every backlog message moved")
}
