package k8s

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func (l *Lab) pidFile(name string) string { return l.path("run", "pids", name+".pid") }

// LogFile is a daemon's log ("kubelet", "containerd", ...).
func (l *Lab) LogFile(name string) string { return filepath.Join(l.LogDir(), name+".log") }

// pidOf returns the pid of a running lab daemon, or 0. The pid file counts
// only while /proc/PID/exe is the daemon's binary.
func (l *Lab) pidOf(d daemon) int {
	data, err := os.ReadFile(l.pidFile(d.name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || !isProcess(pid, d.exe(l)) {
		return 0
	}
	return pid
}

// isProcess tells whether pid is alive (not a zombie) and runs exe.
func isProcess(pid int, exe string) bool {
	if pid <= 0 {
		return false
	}
	got, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil || strings.TrimSuffix(got, " (deleted)") != exe {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	return len(f) > 0 && f[0] != "Z"
}

// start launches a daemon in its own session, detached from warren, with
// its output appended to its log file and its pid in its pid file.
func (l *Lab) start(d daemon) error {
	for _, dir := range []string{filepath.Dir(l.pidFile(d.name)), l.LogDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	out, err := os.OpenFile(l.LogFile(d.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	args := d.args(l)
	fmt.Fprintf(out, "\n--- warren lab k8s: starting %s at %s\n%s %s\n", d.name, time.Now().Format(time.RFC3339), d.exe(l), strings.Join(args, " "))
	cmd := exec.Command(d.exe(l), args...)
	cmd.Dir = l.RunDir()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	// Reap it if it exits while warren still runs, so it never lingers as
	// a zombie that looks alive.
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(l.argsFile(d.name), []byte(l.startRecord(d)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(l.pidFile(d.name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
}

func (l *Lab) argsFile(name string) string { return l.path("run", "pids", name+".args") }

// startRecord is what a daemon was started with: its arguments and the
// contents of its config files.
func (l *Lab) startRecord(d daemon) string {
	rec := strings.Join(d.args(l), "\n")
	for _, c := range d.configs {
		data, _ := os.ReadFile(l.path("run", c))
		rec += "\n--- " + c + "\n" + string(data)
	}
	return rec
}

// stale tells whether a running daemon was started with other arguments
// or config files than this version of the lab gives it, so Up restarts it.
func (l *Lab) stale(d daemon) bool {
	data, err := os.ReadFile(l.argsFile(d.name))
	return err != nil || string(data) != l.startRecord(d)
}

// stop ends a daemon: SIGTERM, then SIGKILL after grace.
func (l *Lab) stop(ctx context.Context, d daemon, grace time.Duration) error {
	pid := l.pidOf(d)
	if pid == 0 {
		_ = os.Remove(l.pidFile(d.name))
		return nil
	}
	slog.Info("stopping", "daemon", d.name, "pid", pid)
	if err := terminate(ctx, pid, d.exe(l), grace); err != nil {
		return fmt.Errorf("stop %s: %w", d.name, err)
	}
	return os.Remove(l.pidFile(d.name))
}

func terminate(ctx context.Context, pid int, exe string, grace time.Duration) error {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if waitGone(ctx, pid, exe, grace) == nil {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return waitGone(ctx, pid, exe, 20*time.Second)
}

func waitGone(ctx context.Context, pid int, exe string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for isProcess(pid, exe) {
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still running after %s", pid, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// waitReady polls check until it passes, the daemon dies, or timeout.
func (l *Lab) waitReady(ctx context.Context, d daemon, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if l.pidOf(d) == 0 {
			return fmt.Errorf("%s exited; last lines of %s:\n%s", d.name, l.LogFile(d.name), tailFile(l.LogFile(d.name), 1500))
		}
		if last = d.ready(ctx, l); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v; last lines of %s:\n%s", d.name, timeout, last, l.LogFile(d.name), tailFile(l.LogFile(d.name), 1500))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func tailFile(path string, n int) string {
	data, _ := os.ReadFile(path)
	return string(tail(data, n))
}

// processesWith lists the pids of processes running exe whose command line
// contains marker: how `down` finds containerd shims of the lab's
// containerd (they carry its socket address) after containerd is gone.
func processesWith(exe, marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !isProcess(pid, exe) {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), marker) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// lock serialises the lab's state changes (build, up, down, source) across
// processes: engineers and test binaries share one lab on a machine, and
// two concurrent Ups would each start the daemons. Status and Kubectl do
// not lock; they only read.
func (l *Lab) lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(l.path(".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for waited := false; ; waited = true {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !waited {
			slog.Info("waiting for another warren process using the Kubernetes lab", "lock", f.Name())
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for the Kubernetes lab lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// strays are processes of a daemon that its pid file does not name: the
// daemon's binary with the lab directory on its command line, left by a
// crash or by two processes racing on a lab without the lock. A stray
// kubelet, say, holds the kubelet's ports and reports to a cluster that no
// longer exists; Up and Down end them.
func (l *Lab) strays(d daemon) []int {
	own := l.pidOf(d)
	var out []int
	for _, pid := range processesWith(d.exe(l), l.Dir+"/") {
		if pid != own {
			out = append(out, pid)
		}
	}
	return out
}

func (l *Lab) killStrays(ctx context.Context, d daemon) error {
	for _, pid := range l.strays(d) {
		slog.Warn("ending a stray lab daemon", "daemon", d.name, "pid", pid)
		if err := terminate(ctx, pid, d.exe(l), 10*time.Second); err != nil {
			return fmt.Errorf("end stray %s %d: %w", d.name, pid, err)
		}
	}
	return nil
}
