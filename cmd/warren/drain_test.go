package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	args := []string{
		"--source-url", e.Source.URLWithVhost(0, "/"), "--source-api", e.Source.API,
		"--target-url", strings.Join(targets, ","), "--target-api", e.Target.API,
	}
	if len(e.Target.NodeAPIs) > 0 {
		args = append(args, "--node-api", strings.Join(e.Target.NodeAPIs, ","))
	}
	return args
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

// The drain process is stopped half-way, by SIGKILL (a crash) or SIGINT
// (Ctrl-C, which must say nothing is lost and exit 130, not report a count
// failure); the same command run again finishes with the first run's
// counts.
func TestDrainKilledAndRunAgain(t *testing.T) {
	e := brokertest.New(t)
	bin := filepath.Join(t.TempDir(), "warren")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			const n = 8000
			queue := "work-" + strconv.Itoa(int(sig))
			src, dst := fill(t, e, queue, n)
			state := filepath.Join(t.TempDir(), "drain.json")
			args := append([]string{"drain", "--vhost", e.Vhost, "--state-file", state, "--progress", "log"}, endpointArgs(e)...)

			// A small prefetch keeps the first run slow enough to stop mid-way.
			proc := exec.Command(bin, append(args, "--prefetch", "5")...)
			var stderr bytes.Buffer
			proc.Stdout, proc.Stderr = os.Stderr, io.MultiWriter(os.Stderr, &stderr)
			require.NoError(t, proc.Start())
			brokertest.Eventually(t, 60*time.Second, func() error {
				if count(t, dst, queue) == 0 {
					return fmt.Errorf("nothing moved yet")
				}
				return nil
			})
			require.NoError(t, proc.Process.Signal(sig))
			_ = proc.Wait()
			moved := count(t, dst, queue)
			require.Less(t, moved, n, "the first run was meant to be stopped before it finished")
			if sig == syscall.SIGINT {
				assert.Equal(t, 130, proc.ProcessState.ExitCode())
				assert.Contains(t, stderr.String(), "Nothing is lost")
				assert.NotContains(t, stderr.String(), "not conserved")
			}

			code, stdout, errOut := warren(t, append(args, "-o", "json")...)
			require.Equal(t, 0, code, errOut)
			var report shovel.Report
			require.NoError(t, json.Unmarshal([]byte(stdout), &report))
			require.Len(t, report.Queues, 1)
			q := report.Queues[0]
			assert.True(t, q.Resumed)
			assert.Equal(t, n, q.SourceBefore)
			assert.Equal(t, n, q.Moved)
			assert.Equal(t, n, count(t, dst, queue))
			assert.Zero(t, count(t, src, queue))

			// And once more: nothing to do.
			code, stdout, errOut = warren(t, args...)
			require.Equal(t, 0, code, errOut)
			assert.Contains(t, stdout, "nothing to drain")
		})
	}
}

func TestDrainExitCodes(t *testing.T) {
	e := brokertest.New(t)
	src := e.Channel(t, e.Source, 0)
	_, err := src.QueueDeclare("orphan", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, src.PublishWithContext(context.Background(), "", "orphan", false, false, amqp.Publishing{Body: []byte("x")}))
	args := append([]string{"drain", "--vhost", e.Vhost, "--state-file", filepath.Join(t.TempDir(), "s.json"), "--progress", "none"}, endpointArgs(e)...)

	code, _, stderr := warren(t, args...)
	assert.Equal(t, exitPreflight, code, "a queue missing on the target refuses the drain")
	assert.Contains(t, stderr, "Import the definitions first")
	assert.Contains(t, stderr, "nothing was moved")

	_, err = src.Consume("orphan", "", false, false, false, false, nil)
	require.NoError(t, err)
	code, _, stderr = warren(t, args...)
	assert.Equal(t, exitPreflight, code, "a live consumer refuses the drain")
	assert.Contains(t, stderr, "--allow-live")

	code, _, stderr = warren(t, "drain", "--source-url", "amqp://u:p@127.0.0.1:1/", "--source-api", "http://127.0.0.1:1", "--target-url", "amqp://u:p@127.0.0.1:1/", "--target-api", "http://127.0.0.1:1")
	assert.Equal(t, exitPreflight, code)
	assert.Contains(t, stderr, "unreachable")
	assert.NotContains(t, stderr, "u:p@", "credentials must not be printed")
}
