package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/modfile"
)

// Packages are the Debian packages the lab runs on: etcd, the container
// runtime, CNI plugins, the tools `down` cleans with, and debootstrap for
// the RabbitMQ image.
var Packages = []string{
	"etcd-server", "containerd", "runc", "containernetworking-plugins",
	"iptables", "conntrack", "debootstrap", "iproute2", "tar",
}

// packageProbes tell, by a file each package installs, whether it is there,
// so that a warm `up` does not call apt at all.
var packageProbes = map[string]string{
	"etcd-server":                 "/usr/bin/etcd",
	"containerd":                  "/usr/bin/containerd",
	"runc":                        "/usr/sbin/runc",
	"containernetworking-plugins": "/usr/lib/cni/bridge",
	"iptables":                    "/usr/sbin/iptables",
	"conntrack":                   "/usr/sbin/conntrack",
	"debootstrap":                 "/usr/sbin/debootstrap",
	"iproute2":                    "/usr/sbin/ip",
	"tar":                         "/usr/bin/tar",
}

// KubernetesBinaries are built from k8s.io/kubernetes at KubernetesVersion.
var KubernetesBinaries = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"}

// CNIBinDir is where Debian's containernetworking-plugins installs.
const CNIBinDir = "/usr/lib/cni"

// EnsurePackages installs the missing Debian packages, non-interactively
// and without letting any of them start a service.
func EnsurePackages(ctx context.Context) error {
	var missing []string
	for _, p := range Packages {
		if _, err := os.Stat(packageProbes[p]); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slog.Info("installing Debian packages", "packages", missing)
	// invoke-rc.d asks policy-rc.d whether to start a service: answer no,
	// so installing containerd or etcd starts nothing behind our back.
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
			return fmt.Errorf("install %v: %w (are you root?)", missing, err)
		}
		defer os.Remove(policy)
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{
		{"apt-get", "-o", aptLockWait, "update", "-q"},
		append([]string{"apt-get", "-o", aptLockWait, "install", "-y", "-q", "--no-install-recommends"}, missing...),
	} {
		if _, err := run(ctx, env, "", args...); err != nil {
			return fmt.Errorf("install Debian packages: %w", err)
		}
	}
	return nil
}

// aptLockWait makes apt-get wait for another apt-get instead of failing
// on dpkg's lock (as lab.AptLockWait does for the broker lab).
const aptLockWait = "DPkg::Lock::Timeout=600"

// BuildSteps names the build steps, in the order Build runs them.
var BuildSteps = []string{"kubernetes", "coredns", "crictl", "pause", "rabbitmq"}

type buildStep struct {
	name, what string
	done       func() bool
	run        func(context.Context) error
}

func (l *Lab) buildSteps() []buildStep {
	return []buildStep{
		{"kubernetes", "Kubernetes " + KubernetesVersion, l.haveBins(KubernetesBinaries...), l.buildKubernetes},
		{"coredns", "CoreDNS " + CoreDNSVersion, l.haveBins("coredns"), func(ctx context.Context) error {
			return l.goInstall(ctx, "coredns", "github.com/coredns/coredns@"+CoreDNSVersion)
		}},
		{"crictl", "crictl " + CrictlVersion, l.haveBins("crictl"), func(ctx context.Context) error {
			return l.goInstall(ctx, "crictl", "sigs.k8s.io/cri-tools/cmd/crictl@"+CrictlVersion)
		}},
		{"pause", "image " + PauseImage, exists(l.imageArchive(PauseImage)), l.buildPauseImage},
		{"rabbitmq", "image " + RabbitMQImage, exists(l.imageArchive(RabbitMQImage)), l.buildRabbitMQImage},
	}
}

// Build builds and caches, in the lab directory, everything the lab needs
// that Debian does not ship: Kubernetes, CoreDNS, crictl, the pause image
// and the RabbitMQ image (all of BuildSteps, or only the named ones). Each
// step is skipped when its result exists, unless force is set, and each
// writes to a temporary name first, so an interrupted build never leaves a
// half-written binary or image behind. Steps run one at a time: the
// machine is small and shared.
func (l *Lab) Build(ctx context.Context, force bool, only ...string) error {
	unlock, err := l.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return l.build(ctx, force, only...)
}

func (l *Lab) build(ctx context.Context, force bool, only ...string) error {
	want := map[string]bool{}
	for _, name := range only {
		if !slices.Contains(BuildSteps, name) {
			return fmt.Errorf("no build step %q (want one of %s)", name, strings.Join(BuildSteps, ", "))
		}
		want[name] = true
	}
	if err := EnsurePackages(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(l.path("logs"), 0o755); err != nil {
		return err
	}
	for _, step := range l.buildSteps() {
		if len(want) > 0 && !want[step.name] || !force && step.done() {
			continue
		}
		start := time.Now()
		slog.Info("building", "what", step.what, "log", l.buildLog(step.name))
		if err := step.run(ctx); err != nil {
			return fmt.Errorf("build %s (log: %s): %w", step.what, l.buildLog(step.name), err)
		}
		slog.Info("built", "what", step.what, "took", time.Since(start).Round(time.Second))
	}
	return nil
}

// Built reports whether every build product is in the cache.
func (l *Lab) Built() bool {
	return l.haveBins(append(KubernetesBinaries, "coredns", "crictl")...)() &&
		exists(l.imageArchive(PauseImage))() && exists(l.imageArchive(RabbitMQImage))()
}

func (l *Lab) haveBins(names ...string) func() bool {
	return func() bool {
		for _, n := range names {
			if _, err := os.Stat(l.Bin(n)); err != nil {
				return false
			}
		}
		return true
	}
}

func exists(path string) func() bool {
	return func() bool { _, err := os.Stat(path); return err == nil }
}

func (l *Lab) buildLog(step string) string {
	return l.path("logs", "build-"+step+".log")
}

// goEnv is the environment of the lab's go builds: static binaries, no
// workspace, no VCS stamping (the cache dir is not a repository).
func goEnv(extra ...string) []string {
	env := append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod -buildvcs=false")
	return append(env, extra...)
}

// buildKubernetes generates a wrapper module and builds every binary in
// one `go build`. `go install k8s.io/kubernetes/cmd/...@v1.37.2` is refused
// because k8s.io/kubernetes's go.mod replaces its staging modules with
// local directories; the wrapper replaces each of them with its published
// version instead.
func (l *Lab) buildKubernetes(ctx context.Context) error {
	src := l.path("src", "kubernetes-"+KubernetesVersion)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	out, err := run(ctx, goEnv(), src, "go", "mod", "download", "-json", "k8s.io/kubernetes@"+KubernetesVersion)
	if err != nil {
		return err
	}
	var dl struct{ GoMod string }
	if err := json.Unmarshal(out, &dl); err != nil || dl.GoMod == "" {
		return fmt.Errorf("go mod download k8s.io/kubernetes: unexpected output %q", tail(out, 300))
	}
	gomod, err := WrapperGoMod(dl.GoMod)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), gomod, 0o644); err != nil {
		return err
	}
	tmp := l.path("bin.tmp")
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	args := []string{"go", "build", "-ldflags", "-s -w " + versionLDFlags(), "-o", tmp + "/"}
	for _, b := range KubernetesBinaries {
		args = append(args, "k8s.io/kubernetes/cmd/"+b)
	}
	if err := runLogged(ctx, goEnv(), src, l.buildLog("kubernetes"), args...); err != nil {
		return err
	}
	return l.installBins(tmp, KubernetesBinaries...)
}

// WrapperGoMod renders the go.mod of the module that builds Kubernetes from
// k8s.io/kubernetes's own go.mod (the file at kubernetesGoMod): it requires
// k8s.io/kubernetes and replaces every staging module that go.mod replaces
// with a local path by its published StagingVersion.
func WrapperGoMod(kubernetesGoMod string) ([]byte, error) {
	data, err := os.ReadFile(kubernetesGoMod)
	if err != nil {
		return nil, err
	}
	upstream, err := modfile.Parse(kubernetesGoMod, data, nil)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", kubernetesGoMod, err)
	}
	f := &modfile.File{}
	if err := f.AddModuleStmt("warren.local/k8s-build"); err != nil {
		return nil, err
	}
	if err := f.AddGoStmt(upstream.Go.Version); err != nil {
		return nil, err
	}
	if err := f.AddRequire("k8s.io/kubernetes", KubernetesVersion); err != nil {
		return nil, err
	}
	n := 0
	for _, r := range upstream.Replace {
		if strings.HasPrefix(r.New.Path, "./staging/") {
			if err := f.AddReplace(r.Old.Path, "", r.Old.Path, StagingVersion); err != nil {
				return nil, err
			}
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%s replaces no staging module: not the go.mod of k8s.io/kubernetes?", kubernetesGoMod)
	}
	f.Cleanup()
	return f.Format()
}

// versionLDFlags stamp the binaries with their version, as Kubernetes'
// release build does; without them `kubectl version` reports v0.0.0 and
// version skew checks fail. The build date is fixed so rebuilds link the
// same binaries.
func versionLDFlags() string {
	var b strings.Builder
	major, minor := "1", strings.Split(KubernetesVersion, ".")[1]
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		for _, kv := range [][2]string{
			{"gitVersion", KubernetesVersion}, {"gitMajor", major}, {"gitMinor", minor},
			{"gitTreeState", "clean"}, {"buildDate", "2026-01-01T00:00:00Z"},
		} {
			fmt.Fprintf(&b, " -X %s.%s=%s", pkg, kv[0], kv[1])
		}
	}
	return strings.TrimSpace(b.String())
}

// goInstall installs a Go program that builds with plain `go install`.
func (l *Lab) goInstall(ctx context.Context, name, pkg string) error {
	tmp := l.path("bin.tmp")
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	env := goEnv("GOBIN="+tmp, "GOFLAGS=-buildvcs=false")
	if err := runLogged(ctx, env, l.Dir, l.buildLog(name), "go", "install", "-trimpath", "-ldflags", "-s -w", pkg); err != nil {
		return err
	}
	return l.installBins(tmp, name)
}

// installBins moves freshly built binaries from tmp into bin/.
func (l *Lab) installBins(tmp string, names ...string) error {
	if err := os.MkdirAll(l.path("bin"), 0o755); err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(tmp, n), l.Bin(n)); err != nil {
			return fmt.Errorf("install %s: %w", n, err)
		}
	}
	return os.RemoveAll(tmp)
}

// run runs a command and returns its stdout; on failure the error carries
// the tail of its stderr.
func run(ctx context.Context, env []string, dir string, args ...string) ([]byte, error) {
	cmd := command(ctx, args...)
	cmd.Env, cmd.Dir = env, dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, tail(stderr.Bytes(), 2000))
	}
	return out, nil
}

// runLogged runs a long command with its output appended to a log file;
// on failure the error carries the log's tail.
func runLogged(ctx context.Context, env []string, dir, logPath string, args ...string) error {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "\n--- %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(args, " "))
	cmd := command(ctx, args...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		data, _ := os.ReadFile(logPath)
		return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, tail(data, 2000))
	}
	return nil
}

// command runs args in a process group of its own, and cancelling ctx
// kills the whole group: debootstrap, apt and go build leave children
// (dpkg, compilers) that would otherwise outlive an interrupted build.
func command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
