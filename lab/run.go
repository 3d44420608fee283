package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warrenmq/warren/broker"
)

// Paths of Debian's rabbitmq-server scripts. The /usr/sbin wrappers switch to
// the rabbitmq user and read that user's cookie, so the lab calls these.
const (
	ServerBin = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	CtlBin    = "/usr/lib/rabbitmq/bin/rabbitmqctl"
)

// AptLockWait makes apt-get wait for another apt-get (two labs set up at
// once, or the system's own updates) instead of failing on dpkg's lock.
const AptLockWait = "DPkg::Lock::Timeout=600"

// EnsureInstalled installs Debian's rabbitmq-server package when it is
// missing. It never lets the package start its own broker.
func EnsureInstalled(ctx context.Context) error {
	if _, err := os.Stat(ServerBin); err == nil {
		return nil
	}
	slog.Info("installing Debian's rabbitmq-server package")
	// invoke-rc.d asks policy-rc.d whether to start services; answer no for
	// the length of the install so no broker appears on 5672.
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
			return fmt.Errorf("install rabbitmq-server: %w (are you root?)", err)
		}
		defer os.Remove(policy)
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{
		{"apt-get", "-o", AptLockWait, "update", "-q"},
		{"apt-get", "-o", AptLockWait, "install", "-y", "-q", "--no-install-recommends", "rabbitmq-server"},
	} {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, tail(out, 2000))
		}
	}
	if _, err := os.Stat(ServerBin); err != nil {
		return fmt.Errorf("rabbitmq-server installed but %s is missing: %w", ServerBin, err)
	}
	return nil
}

// State is what a probe found at a node's ports.
type State string

const (
	Running State = "running" // the HTTP API answers as this node
	Booting State = "booting" // our process is alive but not answering yet
	Down    State = "down"    // no process
	Foreign State = "foreign" // something else answers on the node's port
)

// NodeStatus is one node's state as reported by Status.
type NodeStatus struct {
	Node
	State   State  `json:"state"`
	PID     int    `json:"pid,omitempty"`
	Version string `json:"version,omitempty"`
	Alarms  []string
	Detail  string `json:"detail,omitempty"`
}

// Endpoint is the broker.Endpoint for a single lab node.
func (l *Lab) Endpoint(n Node) broker.Endpoint {
	user, pass := SourceUser, SourcePassword
	if n.Role == Target {
		user, pass = TargetUser, TargetPassword
	}
	ep, err := broker.ParseEndpoint(n.ID,
		fmt.Sprintf("amqp://%s:%s@127.0.0.1:%d/", user, pass, n.AMQPPort),
		fmt.Sprintf("http://127.0.0.1:%d", n.APIPort), broker.TLSOptions{})
	if err != nil {
		panic(err) // built from integers above; cannot fail
	}
	return ep
}

// SourceEndpoint is the lab's source broker.
func (l *Lab) SourceEndpoint() broker.Endpoint { return l.endpointOf(Source) }

// TargetEndpoint is the lab's target cluster, one AMQP URL per node.
func (l *Lab) TargetEndpoint() broker.Endpoint { return l.endpointOf(Target) }

// TargetTLSEndpoint is the lab's target cluster over AMQPS and HTTPS,
// trusting the lab CA.
func (l *Lab) TargetTLSEndpoint() broker.Endpoint {
	var urls []string
	for _, n := range l.NodesOf(Target) {
		urls = append(urls, fmt.Sprintf("amqps://%s:%s@localhost:%d/", TargetUser, TargetPassword, n.AMQPSPort()))
	}
	ep, err := broker.ParseEndpoint("target", strings.Join(urls, ","),
		fmt.Sprintf("https://localhost:%d", l.NodesOf(Target)[0].APISPort()), broker.TLSOptions{CAFile: l.TLS().CA})
	if err != nil {
		panic(err)
	}
	return ep
}

func (l *Lab) endpointOf(role Role) broker.Endpoint {
	env := l.Endpoints()
	ep, err := broker.ParseEndpoint(string(role), env["WARREN_"+strings.ToUpper(string(role))+"_URL"],
		env["WARREN_"+strings.ToUpper(string(role))+"_API"], broker.TLSOptions{})
	if err != nil {
		panic(err)
	}
	return ep
}

func (l *Lab) pid(n Node) int {
	for _, f := range []string{"rabbitmq.pid", "warren.pid"} {
		data, err := os.ReadFile(n.path(f))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err == nil && alive(pid) {
			return pid
		}
	}
	return 0
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie is not alive; /proc tells.
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] != "Z"
}

// Probe reports the state of one node. It takes well under a second.
func (l *Lab) Probe(ctx context.Context, n Node) NodeStatus {
	st := NodeStatus{Node: n, PID: l.pid(n)}
	ep := l.Endpoint(n)
	ep.Timeout = 2 * time.Second
	api, err := ep.NewAPI()
	if err != nil {
		st.State, st.Detail = Down, err.Error()
		return st
	}
	api = api.WithPolicy(api.Policy().NoRetry()) // the lab polls on its own
	ov, err := api.Overview(ctx)
	switch {
	case err == nil && ov.Node == n.Erlang && !n.listening():
		// The management listener starts a moment before the client
		// listeners: not ready for clients yet.
		st.State, st.Detail = Booting, "HTTP API up, AMQP listeners not yet"
	case err == nil && ov.Node == n.Erlang:
		st.State, st.Version = Running, ov.RabbitMQVersion
		if ni, err := api.GetNode(ctx, n.Erlang); err == nil {
			st.Alarms = ni.Alarms()
		}
	case err == nil:
		st.State, st.Detail = Foreign, fmt.Sprintf("port %d answers as node %s", n.APIPort, ov.Node)
	case st.PID != 0:
		st.State, st.Detail = Booting, err.Error()
	case portOpen(n.AMQPPort) || portOpen(n.APIPort):
		st.State, st.Detail = Foreign, fmt.Sprintf("ports %d/%d are in use by another process", n.AMQPPort, n.APIPort)
	default:
		st.State, st.Detail = Down, err.Error()
	}
	return st
}

// listening reports whether every client listener of the node accepts
// connections.
func (n Node) listening() bool {
	if !portOpen(n.AMQPPort) {
		return false
	}
	return n.Role != Target || portOpen(n.AMQPSPort())
}

func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Status probes every node.
func (l *Lab) Status(ctx context.Context) []NodeStatus {
	out := make([]NodeStatus, len(l.Nodes))
	var wg sync.WaitGroup
	for i, n := range l.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = l.Probe(ctx, n) }()
	}
	wg.Wait()
	return out
}

// start launches a node's server in its own session, detached from warren,
// with output in the node's log directory.
func (l *Lab) start(n Node) error {
	if err := l.writeNodeFiles(n); err != nil {
		return err
	}
	_ = os.Remove(n.path("rabbitmq.pid"))
	out, err := os.OpenFile(n.path("log/server.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	fmt.Fprintf(out, "\n--- warren lab: starting %s at %s\n", n.Erlang, time.Now().Format(time.RFC3339))
	cmd := exec.Command(ServerBin)
	cmd.Env = l.env(n)
	cmd.Dir = n.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	if err := os.WriteFile(n.path("warren.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return err
	}
	// Reap the child if warren is still around when it exits, so it does
	// not linger as a zombie that looks alive.
	go func() { _ = cmd.Wait() }()
	return nil
}

// Up installs RabbitMQ if needed and brings every lab node up, restarting any
// that is down, then waits until each answers and the target cluster reports
// all of its nodes running. It is idempotent: on a running lab it only probes.
func (l *Lab) Up(ctx context.Context) error {
	if err := EnsureInstalled(ctx); err != nil {
		return err
	}
	if err := l.writeCookie(); err != nil {
		return err
	}
	if err := l.writeTLS(); err != nil {
		return fmt.Errorf("lab TLS certificates: %w", err)
	}
	attempts := map[string]int{}
	for _, st := range l.Status(ctx) {
		switch st.State {
		case Foreign:
			return fmt.Errorf("lab node %s: %s; stop it or move the lab with %s/%s", st.ID, st.Detail, EnvSourceAMQPPort, EnvTargetAMQPPort)
		case Down:
			slog.Info("starting lab node", "node", st.ID, "amqp", st.AMQPPort, "api", st.APIPort)
			attempts[st.ID]++
			if err := l.start(st.Node); err != nil {
				return err
			}
		}
	}
	if err := l.wait(ctx, attempts); err != nil {
		return err
	}
	return l.healStats(ctx)
}

// healStats restarts the management plugin of a running node whose HTTP API
// reports no disk or memory figures for it. On RabbitMQ 3.10 a node that
// boots while a peer reconnects can crash its stats agent for good
// (rabbit_net:dist_info finds two distribution ports, rabbitmq-server#5496,
// seen here after a kill -9 in the fault suite); warren's preflight then
// cannot see the node's disk. A node that has just booted reports its
// figures within seconds, so only one silent for longer is restarted.
func (l *Lab) healStats(ctx context.Context) error {
	for _, n := range l.Nodes {
		api, err := l.Endpoint(n).NewAPI()
		if err != nil {
			return err
		}
		api = api.WithPolicy(api.Policy().NoRetry())
		deadline := time.Now().Add(15 * time.Second)
		for {
			ni, err := api.GetNode(ctx, n.Erlang)
			if err != nil || !ni.Running || ni.HasFigures() {
				break
			}
			if time.Now().After(deadline) {
				slog.Warn("lab node reports no disk or memory figures; restarting its management plugin", "node", n.ID)
				if _, err := l.Ctl(ctx, n.ID, "eval", broker.RestartManagement); err != nil {
					return fmt.Errorf("restart the management plugin of lab node %s: %w", n.ID, err)
				}
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// bootTimeout bounds how long Up waits for nodes to answer.
const bootTimeout = 4 * time.Minute

func (l *Lab) wait(ctx context.Context, attempts map[string]int) error {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		pending := 0
		for _, st := range l.Status(ctx) {
			switch st.State {
			case Running:
				continue
			case Foreign:
				return fmt.Errorf("lab node %s: %s", st.ID, st.Detail)
			case Down:
				// After a hard kill a node may abort its first boot; try again.
				if attempts[st.ID] >= 3 {
					return fmt.Errorf("lab node %s exited during boot %d times; see %s", st.ID, attempts[st.ID], st.path("log"))
				}
				attempts[st.ID]++
				slog.Warn("lab node is down, starting it", "node", st.ID, "attempt", attempts[st.ID])
				if err := l.start(st.Node); err != nil {
					return err
				}
			}
			pending++
		}
		if pending == 0 {
			running, err := l.clusterRunning(ctx)
			if err == nil && running == TargetNodes {
				return nil
			}
			pending++
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab not up after %s (logs in %s): %w", bootTimeout, l.Dir, ctx.Err())
		case <-tick.C:
		}
	}
}

// clusterRunning counts the target cluster's running members as the first
// target node sees them.
func (l *Lab) clusterRunning(ctx context.Context) (int, error) {
	api, err := l.Endpoint(l.NodesOf(Target)[0]).NewAPI()
	if err != nil {
		return 0, err
	}
	nodes, err := api.WithPolicy(api.Policy().NoRetry()).ListNodes(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ni := range nodes {
		if ni.Running {
			n++
		}
	}
	return n, nil
}

// Down stops every lab node and waits until its ports are free. It touches
// only processes the lab started.
func (l *Lab) Down(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(l.Nodes))
	for i, n := range l.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = l.StopNode(ctx, n.ID) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// StopNode stops one node gracefully (rabbitmqctl stop, which with the pid
// file waits for the process to exit), falls back to signals, and waits
// until its ports are free.
func (l *Lab) StopNode(ctx context.Context, id string) error {
	n, ok := l.Node(id)
	if !ok {
		return fmt.Errorf("no lab node %q", id)
	}
	if pid := l.pid(n); pid != 0 {
		slog.Info("stopping lab node", "node", n.ID, "pid", pid)
		args := []string{"-n", n.Erlang, "stop"}
		if _, err := os.Stat(n.path("rabbitmq.pid")); err == nil {
			args = append(args, n.path("rabbitmq.pid"))
		}
		cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		cmd := exec.CommandContext(cctx, CtlBin, args...)
		cmd.Env = l.env(n)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			slog.Warn("rabbitmqctl stop failed, signalling", "node", n.ID, "err", err, "output", string(tail(out, 300)))
		}
		if err := terminate(ctx, pid); err != nil {
			return fmt.Errorf("stop lab node %s: %w", n.ID, err)
		}
	}
	return waitPortsFree(ctx, n)
}

// Ctl runs rabbitmqctl against one lab node (as a broker operator would:
// raising an alarm, listing queues) and returns its output.
func (l *Lab) Ctl(ctx context.Context, id string, args ...string) (string, error) {
	n, ok := l.Node(id)
	if !ok {
		return "", fmt.Errorf("no lab node %q", id)
	}
	cmd := exec.CommandContext(ctx, CtlBin, append([]string{"-n", n.Erlang}, args...)...)
	cmd.Env = l.env(n)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rabbitmqctl -n %s %s: %w: %s", n.Erlang, strings.Join(args, " "), err, tail(out, 500))
	}
	return string(out), nil
}

// KillNode kills a node's process at once (SIGKILL), as a crash would.
func (l *Lab) KillNode(ctx context.Context, id string) error {
	n, ok := l.Node(id)
	if !ok {
		return fmt.Errorf("no lab node %q", id)
	}
	if pid := l.pid(n); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		if err := waitGone(ctx, pid, 30*time.Second); err != nil {
			return err
		}
	}
	return waitPortsFree(ctx, n)
}

func terminate(ctx context.Context, pid int) error {
	if !alive(pid) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if waitGone(ctx, pid, 60*time.Second) == nil {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return waitGone(ctx, pid, 30*time.Second)
}

func waitGone(ctx context.Context, pid int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for alive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still running after %s", pid, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func waitPortsFree(ctx context.Context, n Node) error {
	deadline := time.Now().Add(60 * time.Second)
	for portOpen(n.AMQPPort) || portOpen(n.APIPort) || portOpen(n.DistPort) {
		if time.Now().After(deadline) {
			return fmt.Errorf("lab node %s stopped but ports %d/%d/%d are still in use", n.ID, n.AMQPPort, n.APIPort, n.DistPort)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
