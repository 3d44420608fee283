package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/shovel"
)

// endpointArgs are the CLI flags for the Env's brokers.
func endpointArgs(e *brokertest.Env) []string {
	var targets []string
	for i := range e.Target.AMQP {
		targets = append(targets, e.Target.URLWithVhost(i, "/"))
	}
	return []string{
		"--source-url", e.Source.URLWithVhost(0, "/"), "--source-api", e.Source.API,
		"--target-url", strings.Join(targets, ","), "--target-api", e.Target.API,
	}
}

func fill(t *testing.T, e *brokertest.Env, queue string, n int) (src, dst *amqp.Channel) {
	t.Helper()
	src = e.Channel(t, e.Source, 0)
	dst = e.Channel(t, e.Target, 0)
	_, err := src.QueueDeclare(queue, true, false, false, false, nil)
	require.NoError(t, err)
	_, err = dst.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	require.NoError(t, src.Confirm(false))
	ctx := context.Background()
	var last *amqp.DeferredConfirmation
	for i := 0; i < n; i++ {
		last, err = src.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false,
			amqp.Publishing{Body: []byte(fmt.Sprintf("m%d", i)), DeliveryMode: amqp.Persistent})
		require.NoError(t, err)
	}
	ok, err := last.WaitContext(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	return src, dst
}

func count(t *testing.T, ch *amqp.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err)
	return q.Messages
}

// The drain process is killed (SIGKILL) half-way; the same command run
// again finishes with the first run's counts.
func TestDrainKilledAndRunAgain(t *testing.T) {
	e := brokertest.New(t)
	const n = 8000
	src, dst := fill(t, e, "work", n)
	state := filepath.Join(t.TempDir(), "drain.json")
	args := append([]string{"drain", "--vhost", e.Vhost, "--state-file", state, "--progress", "log"}, endpointArgs(e)...)

	bin := filepath.Join(t.TempDir(), "warren")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	// A small prefetch keeps the first run slow enough to be killed mid-way.
	proc := exec.Command(bin, append(args, "--prefetch", "5")...)
	proc.Stdout, proc.Stderr = os.Stderr, os.Stderr
	require.NoError(t, proc.Start())
	brokertest.Eventually(t, 60*time.Second, func() error {
		if count(t, dst, "work") == 0 {
			return fmt.Errorf("nothing moved yet")
		}
		return nil
	})
	require.NoError(t, proc.Process.Kill())
	_ = proc.Wait()
	moved := count(t, dst, "work")
	require.Less(t, moved, n, "the first run was meant to be killed before it finished")

	code, stdout, stderr := warren(t, append(args, "-o", "json")...)
	require.Equal(t, 0, code, stderr)
	var report shovel.Report
	require.NoError(t, json.Unmarshal([]byte(stdout), &report))
	require.Len(t, report.Queues, 1)
	q := report.Queues[0]
	assert.True(t, q.Resumed)
	assert.Equal(t, n, q.SourceBefore)
	assert.Equal(t, n, q.Moved)
	assert.Equal(t, n, count(t, dst, "work"))
	assert.Zero(t, count(t, src, "work"))

	// And once more: nothing to do.
	code, stdout, stderr = warren(t, args...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "nothing to drain")
}

func TestDrainExitCodes(t *testing.T) {
	e := brokertest.New(t)
	src := e.Channel(t, e.Source, 0)
	_, err := src.QueueDeclare("orphan", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, src.PublishWithContext(context.Background(), "", "orphan", false, false, amqp.Publishing{Body: []byte("x")}))
	args := append([]string{"drain", "--vhost", e.Vhost, "--state-file", filepath.Join(t.TempDir(), "s.json"), "--progress", "none"}, endpointArgs(e)...)

	code, stdout, _ := warren(t, args...)
	assert.Equal(t, exitDrain, code, "a queue missing on the target fails the drain")
	assert.Contains(t, stdout, "import the definitions first")

	_, err = src.Consume("orphan", "", false, false, false, false, nil)
	require.NoError(t, err)
	code, _, stderr := warren(t, args...)
	assert.Equal(t, exitPreflight, code, "a live consumer refuses the drain")
	assert.Contains(t, stderr, "--allow-live")

	code, _, stderr = warren(t, "drain", "--source-url", "amqp://u:p@127.0.0.1:1/", "--source-api", "http://127.0.0.1:1", "--target-url", "amqp://u:p@127.0.0.1:1/", "--target-api", "http://127.0.0.1:1")
	assert.Equal(t, exitPreflight, code)
	assert.Contains(t, stderr, "unreachable")
	assert.NotContains(t, stderr, "u:p@", "credentials must not be printed")
}
