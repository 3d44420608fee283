package brokertest

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// WarrenBinary builds the warren CLI once per test process and returns its
// path, for tests that run it as a real process (to kill it, say).
func WarrenBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "warren-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "warren")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/warrenmq/warren/cmd/warren").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build warren: %v\n%s", buildErr, binPath)
	}
	return binPath
}

// CLIEnv is the environment in which the warren CLI talks to e's brokers:
// the WARREN_* connection variables, and a state directory of the test's
// own. Other WARREN_* variables of the caller's are dropped.
func (e *Env) CLIEnv(t testing.TB) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WARREN_") {
			env = append(env, kv)
		}
	}
	urls := func(ep []string) string { return strings.Join(ep, ",") }
	var targets []string
	for i := range e.Target.AMQP {
		targets = append(targets, e.Target.URLWithVhost(i, ""))
	}
	env = append(env,
		"WARREN_SOURCE_URL="+e.Source.URLWithVhost(0, ""),
		"WARREN_SOURCE_API="+e.Source.API,
		"WARREN_TARGET_URL="+urls(targets),
		"WARREN_TARGET_API="+e.Target.API,
		"WARREN_STATE_DIR="+t.TempDir(),
	)
	if len(e.Target.NodeAPIs) > 0 {
		env = append(env, "WARREN_NODE_API="+urls(e.Target.NodeAPIs))
	}
	return env
}

// Result is one run of the CLI.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs the warren binary with args in env and waits for it. Its
// stderr is also copied to the test's log.
func Run(t testing.TB, env []string, args ...string) Result {
	t.Helper()
	cmd := Start(t, env, args...)
	err := cmd.Wait()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run warren %s: %v", strings.Join(args, " "), err)
	}
	return cmd.Result()
}

// Process is a warren CLI process.
type Process struct {
	*exec.Cmd
	out, errOut *bytes.Buffer
}

// Start starts the warren binary with args in env.
func Start(t testing.TB, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Cmd: exec.Command(WarrenBinary(t), args...), out: &bytes.Buffer{}, errOut: &bytes.Buffer{}}
	p.Env = env
	p.Stdout = p.out
	p.Stderr = io.MultiWriter(p.errOut, testLog{t})
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start warren: %v", err)
	}
	return p
}

// Result is what the process printed and its exit code; call it after
// Wait.
func (p *Process) Result() Result {
	code := -1
	if p.ProcessState != nil {
		code = p.ProcessState.ExitCode()
	}
	return Result{Code: code, Stdout: p.out.String(), Stderr: p.errOut.String()}
}

// testLog writes a process's output to the test log, line by line.
type testLog struct{ t testing.TB }

func (l testLog) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		l.t.Log(line)
	}
	return len(b), nil
}
