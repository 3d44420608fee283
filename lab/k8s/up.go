package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// State of a lab component.
type State string

const (
	Running State = "running" // alive and its health check passes
	Unready State = "unready" // alive, health check failing
	Down    State = "down"    // not running
)

// ComponentStatus is one daemon's state as Status reports it.
type ComponentStatus struct {
	Name   string `json:"name"`
	State  State  `json:"state"`
	PID    int    `json:"pid,omitempty"`
	Log    string `json:"log"`
	Detail string `json:"detail,omitempty"`
}

// Status checks every daemon and the node, in well under a second on a
// running lab.
func (l *Lab) Status(ctx context.Context) []ComponentStatus {
	out := make([]ComponentStatus, len(daemons)+1)
	var wg sync.WaitGroup
	for i, d := range daemons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := ComponentStatus{Name: d.name, PID: l.pidOf(d), Log: l.LogFile(d.name)}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			switch {
			case st.PID == 0:
				st.State = Down
			case d.name == "containerd":
				st.State = Running
				if _, err := l.ctr(cctx, "version"); err != nil {
					st.State, st.Detail = Unready, err.Error()
				}
			default:
				st.State = Running
				if err := d.ready(cctx, l); err != nil {
					st.State, st.Detail = Unready, err.Error()
				}
			}
			out[i] = st
		}()
	}
	wg.Wait()
	node := ComponentStatus{Name: "node/" + NodeName, State: Down}
	if out[1].State == Running {
		if err := l.nodeReady(ctx); err != nil {
			node.State, node.Detail = Unready, err.Error()
		} else {
			node.State = Running
		}
	}
	out[len(daemons)] = node
	return out
}

// Running reports whether every component is running.
func (l *Lab) Running(ctx context.Context) bool {
	for _, st := range l.Status(ctx) {
		if st.State != Running {
			return false
		}
	}
	return true
}

// readyTimeout bounds each daemon's start.
const readyTimeout = 3 * time.Minute

// Up builds what is missing, then starts every daemon that is not running,
// in order, waiting for each to be healthy, and finally waits for the node
// to be Ready and applies the lab's cluster add-ons (StorageClass and its
// volumes). On a running lab it only checks, in about a second.
func (l *Lab) Up(ctx context.Context) error {
	unlock, err := l.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return l.up(ctx)
}

func (l *Lab) up(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errors.New("the Kubernetes lab runs containers and changes the network: run it as root")
	}
	if err := l.build(ctx, false); err != nil {
		return err
	}
	if err := l.writePKI(); err != nil {
		return fmt.Errorf("lab certificates: %w", err)
	}
	if err := l.writeKubeconfigs(); err != nil {
		return err
	}
	if err := l.writeConfigs(); err != nil {
		return err
	}
	if err := l.prepareHost(ctx); err != nil {
		return fmt.Errorf("prepare this machine for the lab: %w", err)
	}
	for _, d := range daemons {
		if err := l.killStrays(ctx, d); err != nil {
			return err
		}
		if l.pidOf(d) != 0 && l.stale(d) {
			slog.Info("restarting with new arguments", "daemon", d.name)
			if err := l.stop(ctx, d, 10*time.Second); err != nil {
				return err
			}
		}
		if l.pidOf(d) == 0 {
			start := time.Now()
			if err := l.start(d); err != nil {
				return err
			}
			if err := l.waitReady(ctx, d, readyTimeout); err != nil {
				return err
			}
			slog.Info("started", "daemon", d.name, "took", time.Since(start).Round(10*time.Millisecond))
			continue
		}
		if err := l.waitReady(ctx, d, readyTimeout); err != nil {
			return err
		}
	}
	if err := l.waitNodeReady(ctx, readyTimeout); err != nil {
		return err
	}
	return l.applyAddons(ctx)
}

func (l *Lab) nodeReady(ctx context.Context) error {
	out, err := l.Kubectl(ctx, nil, "get", "node", NodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(string(out)); s != "True" {
		return fmt.Errorf("node %s Ready=%q", NodeName, s)
	}
	return nil
}

func (l *Lab) waitNodeReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := l.nodeReady(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node not ready after %s: %w (kubelet log: %s)", timeout, err, l.LogFile("kubelet"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Kubectl runs the lab's kubectl as admin with stdin (may be nil) and
// returns its stdout; the error carries stderr.
func (l *Lab) Kubectl(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	env := append(os.Environ(), "KUBECONFIG="+l.Kubeconfig())
	cmd := append([]string{l.Bin("kubectl"), "--request-timeout=30s"}, args...)
	if stdin == nil {
		return run(ctx, env, "", cmd...)
	}
	return runStdin(ctx, env, stdin, cmd...)
}

// Apply applies manifests with kubectl (server-side, so re-applying is
// idempotent and conflicts are reported).
func (l *Lab) Apply(ctx context.Context, manifests string) error {
	_, err := l.Kubectl(ctx, []byte(manifests), "apply", "--server-side", "--force-conflicts", "--field-manager=warren-lab", "-f", "-")
	return err
}

// Down stops the lab and leaves the machine as it was: pods removed
// through the runtime (so CNI releases their addresses and rules), every
// daemon stopped, containerd shims gone, the lab's iptables chains and
// rules removed, mounts under the lab detached, the bridge deleted,
// sysctls restored, and the cluster's state wiped so the next Up starts a
// fresh cluster. Built binaries, images and certificates stay cached.
func (l *Lab) Down(ctx context.Context) error {
	unlock, err := l.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return l.down(ctx)
}

func (l *Lab) down(ctx context.Context) error {
	var errs []error
	byName := map[string]daemon{}
	for _, d := range daemons {
		byName[d.name] = d
	}
	// The kubelet first, or it would restart what we remove.
	if err := l.stop(ctx, byName["kubelet"], 30*time.Second); err != nil {
		errs = append(errs, err)
	}
	if l.pidOf(byName["containerd"]) != 0 {
		if err := l.sourceDown(ctx); err != nil {
			errs = append(errs, err)
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		if _, err := run(cctx, os.Environ(), "", l.Bin("crictl"), "--runtime-endpoint", "unix://"+l.containerdSock(), "--timeout", "60s", "rmp", "--all", "--force"); err != nil {
			errs = append(errs, fmt.Errorf("remove pods: %w", err))
		}
		cancel()
	}
	for i := len(daemons) - 1; i >= 0; i-- {
		if daemons[i].name == "kubelet" {
			continue
		}
		if err := l.stop(ctx, daemons[i], 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range daemons {
		if err := l.killStrays(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	for _, pid := range processesWith("/usr/bin/containerd-shim-runc-v2", l.containerdSock()) {
		slog.Warn("killing a leftover containerd shim", "pid", pid)
		if err := terminate(ctx, pid, "/usr/bin/containerd-shim-runc-v2", 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if err := cleanCgroups(ctx); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat(l.Bin("kube-proxy")); err == nil {
		// kube-proxy knows its own rules best; the sweep below catches
		// what it leaves and the kubelet's and CNI's chains.
		_, _ = run(ctx, os.Environ(), "", l.Bin("kube-proxy"), "--cleanup")
	}
	if err := cleanIptables(ctx); err != nil {
		errs = append(errs, fmt.Errorf("iptables cleanup: %w", err))
	}
	if m := unmountUnder(l.Dir); len(m) > 0 {
		slog.Info("unmounted", "mounts", len(m))
	}
	cleanNetns(ctx)
	if err := l.restoreHost(ctx); err != nil {
		errs = append(errs, err)
	}
	if left := mountsUnder(l.Dir); len(left) > 0 {
		errs = append(errs, fmt.Errorf("still mounted under %s: %v", l.Dir, left))
	} else {
		for _, d := range []string{"etcd", "kubelet", "volumes", "cni", "containerd", "source", "pids", "pod-logs"} {
			if err := os.RemoveAll(l.path("run", d)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ErrNotRunning is returned by operations that need a running lab.
var ErrNotRunning = errors.New("the Kubernetes lab is not running (run `warren lab k8s up`)")

func runStdin(ctx context.Context, env []string, stdin []byte, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := command(ctx, args...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, tail(stderr.Bytes(), 2000))
	}
	return stdout.Bytes(), nil
}

// CollectFailure saves what the next reader needs to see why something
// failed on the lab: every daemon log, the cluster's events, pods and
// their logs (current and previous containers), PVs and PVCs, and the
// source container's log. It replaces the previous failure's files and
// returns the directory.
func (l *Lab) CollectFailure(ctx context.Context, reason string) string {
	dir := l.FailureDir()
	_ = os.RemoveAll(dir)
	_ = os.MkdirAll(filepath.Join(dir, "daemons"), 0o755)
	_ = os.MkdirAll(filepath.Join(dir, "pods"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "REASON.txt"), []byte(time.Now().Format(time.RFC3339)+"\n"+reason+"\n"), 0o644)
	logs, _ := filepath.Glob(filepath.Join(l.LogDir(), "*.log"))
	for _, p := range logs {
		if data, err := os.ReadFile(p); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "daemons", filepath.Base(p)), tail(data, 4<<20), 0o644)
		}
	}
	st, _ := json.MarshalIndent(l.Status(ctx), "", "  ")
	_ = os.WriteFile(filepath.Join(dir, "status.json"), st, 0o644)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	save := func(name string, args ...string) {
		out, err := l.Kubectl(ctx, nil, args...)
		if err != nil {
			out = append(out, []byte("\n"+err.Error())...)
		}
		_ = os.WriteFile(filepath.Join(dir, name), out, 0o644)
	}
	save("events.txt", "get", "events", "-A", "--sort-by=.lastTimestamp", "-o", "wide")
	save("resources.txt", "get", "nodes,pods,services,endpointslices,statefulsets,pvc,pv,storageclass", "-A", "-o", "wide")
	save("describe-pods.txt", "describe", "pods", "-A")
	save("describe-node.txt", "describe", "node", NodeName)
	out, err := l.Kubectl(ctx, nil, "get", "pods", "-A", "-o", `jsonpath={range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{"\n"}{end}`)
	if err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				continue
			}
			save(filepath.Join("pods", f[0]+"_"+f[1]+".log"), "logs", "-n", f[0], f[1], "--all-containers", "--timestamps")
			save(filepath.Join("pods", f[0]+"_"+f[1]+".previous.log"), "logs", "-n", f[0], f[1], "--all-containers", "--timestamps", "--previous")
		}
	}
	if data, err := os.ReadFile(l.sourceLog()); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "source-container.log"), tail(data, 4<<20), 0o644)
	}
	return dir
}
