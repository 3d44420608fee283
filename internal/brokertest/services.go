package brokertest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/traffic"
)

var (
	examplesOnce sync.Once
	examplesDir  string
	examplesErr  error
)

// ExampleBinaries builds the example services (examples/producer,
// examples/consumer, examples/report) once per test process and returns
// the directory that holds them.
func ExampleBinaries(t testing.TB) string {
	t.Helper()
	examplesOnce.Do(func() {
		dir, err := os.MkdirTemp("", "warren-examples-")
		if err != nil {
			examplesErr = err
			return
		}
		out, err := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
			"github.com/warrenmq/warren/examples/producer",
			"github.com/warrenmq/warren/examples/consumer",
			"github.com/warrenmq/warren/examples/report").CombinedOutput()
		if err != nil {
			examplesErr = fmt.Errorf("%w: %s", err, out)
		}
		examplesDir = dir
	})
	if examplesErr != nil {
		t.Fatalf("build the example services: %v", examplesErr)
	}
	return examplesDir
}

// Service is one run of an example service as a process: its stdout (the
// summary it prints when it stops) in memory, its log in a file that the
// test log shows when the test fails.
type Service struct {
	Name   string
	cmd    *exec.Cmd
	stdout bytes.Buffer
	log    string
	done   chan error
}

// StartService starts the binary with the caller's environment plus env
// (AMQP_URLS, AMQP_QUEUE, LEDGER, ...). It is killed at the end of the
// test if still running.
func StartService(t testing.TB, bin, name string, env ...string) *Service {
	t.Helper()
	s := &Service{Name: name, cmd: exec.Command(bin), done: make(chan error, 1), log: filepath.Join(t.TempDir(), name+".log")}
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatalf("%s log: %v", name, err)
	}
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { s.done <- s.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
		}
		if t.Failed() {
			out, _ := os.ReadFile(s.log)
			t.Logf("%s log:\n%s", s.Name, out)
		}
	})
	return s
}

// Stop sends SIGTERM and requires a graceful exit (status 0) within 60s.
func (s *Service) Stop(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", s.Name, err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			out, _ := os.ReadFile(s.log)
			t.Fatalf("%s did not exit cleanly (%v); its log:\n%s", s.Name, err, out)
		}
		t.Logf("%s stopped: %s", s.Name, strings.TrimSpace(s.stdout.String()))
	case <-time.After(60 * time.Second):
		t.Fatalf("%s still running 60s after SIGTERM", s.Name)
	}
}

// LedgerCount counts events of a kind in a ledger; a ledger not written
// yet counts 0.
func LedgerCount(t testing.TB, path string, kind traffic.Kind) int {
	t.Helper()
	events, err := traffic.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatalf("read ledger %s: %v", path, err)
	}
	n := 0
	for _, e := range events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
