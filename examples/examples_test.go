package examples_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/internal/traffic"
)

// build compiles the example commands into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir := t.TempDir()
	cmd := exec.Command(goBin, "build", "-o", dir+string(os.PathSeparator), "./producer", "./consumer", "./report")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return dir
}

// proc is one run of an example command.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout bytes.Buffer
	log    string
	done   chan error
}

func start(t *testing.T, bin, name string, env ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin), done: make(chan error, 1), log: filepath.Join(t.TempDir(), name+".log")}
	logf, err := os.Create(p.log)
	require.NoError(t, err)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, logf
	require.NoError(t, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
		if t.Failed() {
			out, _ := os.ReadFile(p.log)
			t.Logf("%s log:\n%s", p.name, out)
		}
	})
	return p
}

// stop sends SIGTERM and expects a graceful exit (status 0) within 60s.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		out, _ := os.ReadFile(p.log)
		require.NoError(t, err, "%s did not exit cleanly; its log:\n%s", p.name, out)
		t.Logf("%s stopped: %s", p.name, strings.TrimSpace(p.stdout.String()))
	case <-time.After(60 * time.Second):
		t.Fatalf("%s still running 60s after SIGTERM", p.name)
	}
}

// count counts events of a kind in a ledger.
func count(t *testing.T, path string, kind traffic.Kind) int {
	t.Helper()
	events, err := traffic.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	n := 0
	for _, e := range events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() (int, int)) {
	t.Helper()
	brokertest.Eventually(t, d, func() error {
		if got, want := cond(); got < want {
			return fmt.Errorf("%s: %d, waiting for %d", what, got, want)
		}
		return nil
	})
}

// The producer and consumer examples run as real processes against the
// lab cluster at 200 msg/s. Each is restarted once with another node's URL,
// as a service is when it switches brokers; their ledgers then show that
// no confirmed message was lost.
func TestExamplesSurviveRestartsOnAnotherNode(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	bin := build(t)
	dir := t.TempDir()
	pubLedger, consLedger := filepath.Join(dir, "producer.ledger"), filepath.Join(dir, "consumer.ledger")
	node := func(i int) string { return "AMQP_URLS=" + e.Target.AMQP[i].String() }
	common := []string{"AMQP_QUEUE=demo", "AMQP_QUEUE_TYPE=quorum"}
	producer := func(i int) *proc {
		return start(t, filepath.Join(bin, "producer"), fmt.Sprintf("producer-on-node-%d", i+1),
			append(common, node(i), "RATE=200", "LEDGER="+pubLedger, "CONNECTION_NAME=example-producer")...)
	}
	consumer := func(i int) *proc {
		return start(t, filepath.Join(bin, "consumer"), fmt.Sprintf("consumer-on-node-%d", i+1),
			append(common, node(i), "LEDGER="+consLedger, "CONNECTION_NAME=example-consumer")...)
	}
	confirmed := func() int { return count(t, pubLedger, traffic.Confirmed) }
	received := func() int { return count(t, consLedger, traffic.Received) }

	c := consumer(0)
	p := producer(0)
	waitFor(t, "confirmed", 60*time.Second, func() (int, int) { return confirmed(), 600 })

	c.stop(t)
	c = consumer(1)
	mark := received()
	waitFor(t, "received after the consumer moved", 60*time.Second, func() (int, int) { return received(), mark + 400 })

	p.stop(t)
	p = producer(2)
	mark = confirmed()
	waitFor(t, "confirmed after the producer moved", 60*time.Second, func() (int, int) { return confirmed(), mark + 400 })
	p.stop(t)

	var fig traffic.Figures
	brokertest.Eventually(t, 60*time.Second, func() error {
		var err error
		if fig, err = traffic.CompareFiles([]string{pubLedger}, []string{consLedger}); err != nil {
			return err
		}
		if fig.Lost > 0 {
			return fmt.Errorf("%d confirmed messages not consumed yet", fig.Lost)
		}
		return nil
	})
	c.stop(t)
	fig, err := traffic.CompareFiles([]string{pubLedger}, []string{consLedger})
	require.NoError(t, err)
	t.Logf("examples restarted on other nodes: %s", fig)
	assert.Zero(t, fig.Lost, "lost ids: %v", fig.LostIDs)
	assert.GreaterOrEqual(t, fig.Published, 1400)
	assert.Equal(t, 2, count(t, pubLedger, traffic.Start), "the restarted producer appended to its ledger")
	assert.Equal(t, 2, count(t, consLedger, traffic.Start), "the restarted consumer appended to its ledger")

	// The report command reads the same ledgers.
	out, err := exec.Command(filepath.Join(bin, "report"), "-producer", pubLedger, "-consumer", consLedger).CombinedOutput()
	require.NoError(t, err, "report: %s", out)
	assert.Contains(t, string(out), "lost 0,")
}
