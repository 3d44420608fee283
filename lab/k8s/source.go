package k8s

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
)

// The source broker: the lab's stand-in for a team's
// `docker run -p 5672:5672 -p 15672:15672 rabbitmq:3-management`, run from
// the lab's RabbitMQ image as a plain containerd container on the host
// network.
const (
	SourceContainer = "warren-source"
	SourceAMQPPort  = 5672
	SourceAPIPort   = 15672
	// SourceUser and SourcePassword are the image's defaults, as in the
	// Docker image.
	SourceUser, SourcePassword = "guest", "guest"
	// SourceNode is the source broker's Erlang node name.
	SourceNode = "rabbit@localhost"
	// sourceEPMDPort keeps the container's epmd off 4369: on the host
	// network it would otherwise share (and, when stopped, could take
	// down) the epmd that the broker lab's nodes registered with.
	sourceEPMDPort = 4371
	sourceDistPort = 25672
)

func (l *Lab) sourceDir() string { return l.path("run", "source") }
func (l *Lab) sourceLog() string { return l.LogFile("source") }

// sourceConfig listens for AMQP on loopback (for warren on this machine)
// and on the node address (for shovels running in pods), and serves the
// HTTP API on loopback only.
func sourceConfig() string {
	return fmt.Sprintf(`# warren k8s lab source broker
loopback_users.guest = false
listeners.tcp.1 = 127.0.0.1:%[1]d
listeners.tcp.2 = %[2]s:%[1]d
management.tcp.ip = 127.0.0.1
management.tcp.port = %[3]d
cluster_name = warren-k8s-source
`, SourceAMQPPort, NodeIP, SourceAPIPort)
}

// SourceEndpoint is the source broker as seen from this machine.
func (l *Lab) SourceEndpoint() broker.Endpoint {
	env := l.Env()
	ep, err := broker.ParseEndpoint("source", env["WARREN_SOURCE_URL"], env["WARREN_SOURCE_API"], broker.TLSOptions{})
	if err != nil {
		panic(err) // built from constants
	}
	return ep
}

// SourceUp starts the source container unless it runs, and waits until
// its API answers as the source node. The lab must be up.
func (l *Lab) SourceUp(ctx context.Context) error {
	unlock, err := l.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return l.sourceUp(ctx)
}

func (l *Lab) sourceUp(ctx context.Context) error {
	if _, err := l.ctr(ctx, "version"); err != nil {
		return fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	if l.sourceTaskRunning(ctx) {
		return l.waitSource(ctx, 3*time.Minute)
	}
	_ = l.removeSource(ctx) // a stopped task or container from before
	for _, p := range []int{SourceAMQPPort, SourceAPIPort, sourceEPMDPort, sourceDistPort} {
		if portOpen("127.0.0.1", p) {
			return fmt.Errorf("port %d is in use by another process: the source container needs 5672, 15672, %d and %d", p, sourceEPMDPort, sourceDistPort)
		}
	}
	dir := l.sourceDir()
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "conf.d", "10-warren.conf"), []byte(sourceConfig()), 0o644); err != nil {
		return err
	}
	cookie, err := l.sourceCookie()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(l.LogDir(), 0o755); err != nil {
		return err
	}
	slog.Info("starting the source container", "amqp", SourceAMQPPort, "api", SourceAPIPort)
	_, err = l.ctr(ctx, "run", "--detach", "--net-host",
		"--log-uri", "file://"+l.sourceLog(),
		"--mount", "type=bind,src="+filepath.Join(dir, "conf.d")+",dst=/etc/rabbitmq/conf.d,options=rbind:ro",
		"--env", "RABBITMQ_ERLANG_COOKIE="+cookie,
		"--env", "RABBITMQ_NODENAME="+SourceNode,
		"--env", "ERL_EPMD_PORT="+strconv.Itoa(sourceEPMDPort),
		"--env", "ERL_EPMD_ADDRESS=127.0.0.1",
		"--env", "RABBITMQ_DIST_PORT="+strconv.Itoa(sourceDistPort),
		"--env", "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"--env", "RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		RabbitMQImage, SourceContainer)
	if err != nil {
		return fmt.Errorf("start the source container: %w", err)
	}
	return l.waitSource(ctx, 3*time.Minute)
}

func (l *Lab) sourceCookie() (string, error) {
	p := filepath.Join(l.sourceDir(), "cookie")
	if data, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(data)), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	c := strings.ToUpper(hex.EncodeToString(b))
	return c, os.WriteFile(p, []byte(c), 0o600)
}

func (l *Lab) sourceTaskRunning(ctx context.Context) bool {
	out, err := l.ctr(ctx, "tasks", "ls")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == SourceContainer && f[2] == "RUNNING" {
			return true
		}
	}
	return false
}

// waitSource waits until the source's API answers as SourceNode and its
// AMQP port accepts connections.
func (l *Lab) waitSource(ctx context.Context, timeout time.Duration) error {
	ep := l.SourceEndpoint()
	ep.Timeout = 3 * time.Second
	api, err := ep.NewAPI()
	if err != nil {
		return err
	}
	api = api.WithPolicy(api.Policy().NoRetry()) // polled below
	deadline := time.Now().Add(timeout)
	var last error
	for {
		var ov *broker.Overview
		ov, last = api.Overview(ctx)
		if last == nil && ov.Node != SourceNode {
			last = fmt.Errorf("port %d answers as node %s, not %s", SourceAPIPort, ov.Node, SourceNode)
		}
		if last == nil {
			conn, err := ep.Dial(ctx, "/")
			if err == nil {
				return conn.Close()
			}
			last = err
		}
		if !l.sourceTaskRunning(ctx) {
			return fmt.Errorf("the source container exited; its log %s ends:\n%s", l.sourceLog(), tailFile(l.sourceLog(), 1500))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("source broker not up after %s: %v (log: %s)", timeout, last, l.sourceLog())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// SourceStatus reports the source container: Running when its task runs
// and its API answers as SourceNode.
func (l *Lab) SourceStatus(ctx context.Context) ComponentStatus {
	st := ComponentStatus{Name: "source " + SourceContainer, State: Down, Log: l.sourceLog()}
	if !l.sourceTaskRunning(ctx) {
		return st
	}
	st.State = Unready
	api, err := l.SourceEndpoint().NewAPI()
	if err != nil {
		st.Detail = err.Error()
		return st
	}
	ov, err := api.Overview(ctx)
	if err != nil {
		st.Detail = err.Error()
		return st
	}
	if ov.Node != SourceNode {
		st.Detail = "answers as " + ov.Node
		return st
	}
	st.State = Running
	return st
}

// SourceDown stops and removes the source container, if any.
func (l *Lab) SourceDown(ctx context.Context) error {
	unlock, err := l.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return l.sourceDown(ctx)
}

func (l *Lab) sourceDown(ctx context.Context) error {
	if _, err := l.ctr(ctx, "version"); err != nil {
		return nil // containerd is down: so is the container
	}
	if l.sourceTaskRunning(ctx) {
		slog.Info("stopping the source container")
		_, _ = l.ctr(ctx, "tasks", "kill", "--signal", "SIGTERM", SourceContainer)
		deadline := time.Now().Add(60 * time.Second)
		for l.sourceTaskRunning(ctx) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(300 * time.Millisecond):
			}
		}
		if l.sourceTaskRunning(ctx) {
			_, _ = l.ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", SourceContainer)
		}
	}
	return l.removeSource(ctx)
}

func (l *Lab) removeSource(ctx context.Context) error {
	out, err := l.ctr(ctx, "containers", "ls", "-q")
	if err != nil || !containsLine(string(out), SourceContainer) {
		return err
	}
	// A task that has just been killed may need a moment to be deletable.
	var last error
	for i := 0; i < 50; i++ {
		_, _ = l.ctr(ctx, "tasks", "delete", SourceContainer)
		if _, last = l.ctr(ctx, "containers", "delete", SourceContainer); last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("remove the source container: %w", last)
}

func containsLine(s, want string) bool {
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == want {
			return true
		}
	}
	return false
}

func portOpen(host string, port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
