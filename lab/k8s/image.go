package k8s

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// imageArchive is where an image's archive is cached.
func (l *Lab) imageArchive(image string) string {
	name := strings.NewReplacer("warren.local/", "", "/", "-", ":", "-").Replace(image)
	return l.path("images", name+".tar")
}

// ImageConfig is the part of an image's config the lab sets.
type ImageConfig struct {
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
}

// WriteImageArchive writes an image of one layer (an uncompressed tar of
// its root filesystem, at layerPath) as a docker-archive, the format of
// `docker save`, which `ctr images import` reads. The layer is hashed as it
// is copied, so the archive is written in one pass.
func WriteImageArchive(dst, name, layerPath string, cfg ImageConfig) error {
	layer, err := os.Open(layerPath)
	if err != nil {
		return err
	}
	defer layer.Close()
	st, err := layer.Stat()
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, layer); err != nil {
		return fmt.Errorf("hash layer: %w", err)
	}
	diffID := hex.EncodeToString(h.Sum(nil))
	if _, err := layer.Seek(0, io.SeekStart); err != nil {
		return err
	}
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2026-01-01T00:00:00Z",
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + diffID}},
		"history":      []map[string]string{{"created": "2026-01-01T00:00:00Z", "created_by": "warren lab k8s build"}},
	})
	if err != nil {
		return err
	}
	cs := sha256.Sum256(config)
	configName := hex.EncodeToString(cs[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{name},
		"Layers":   []string{diffID + "/layer.tar"},
	}})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: diffID + "/", Mode: 0o755, ModTime: mtime, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	if err := add(diffID+"/layer.tar", st.Size(), layer); err != nil {
		return fmt.Errorf("write layer: %w", err)
	}
	if err := add(configName, int64(len(config)), strings.NewReader(string(config))); err != nil {
		return err
	}
	if err := add("manifest.json", int64(len(manifest)), strings.NewReader(string(manifest))); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// pauseSource is the pod sandbox's program. As PID 1 of a pod it reaps
// orphaned children and exits on SIGINT or SIGTERM, like Kubernetes' own
// pause, which cannot be pulled here.
const pauseSource = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
`

func (l *Lab) buildPauseImage(ctx context.Context) error {
	src := l.path("src", "pause")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module warren.local/pause\n\ngo 1.22\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(pauseSource), 0o644); err != nil {
		return err
	}
	bin := filepath.Join(src, "pause")
	if err := runLogged(ctx, goEnv(), src, l.buildLog("pause"), "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "."); err != nil {
		return err
	}
	layer := filepath.Join(src, "layer.tar")
	if err := singleFileLayer(layer, "pause", bin); err != nil {
		return err
	}
	defer os.Remove(layer)
	return WriteImageArchive(l.imageArchive(PauseImage), PauseImage, layer, ImageConfig{Entrypoint: []string{"/pause"}, User: "65535:65535"})
}

func singleFileLayer(dst, name, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// Debian mirror and suite of the RabbitMQ image.
const (
	debianSuite  = "bookworm"
	debianMirror = "http://deb.debian.org/debian"
	debianSec    = "http://deb.debian.org/debian-security"
)

// rabbitEntrypoint does what the official image's entrypoint does that the
// lab needs: the Erlang cookie from RABBITMQ_ERLANG_COOKIE, and dropping
// root to the rabbitmq user (after handing it the data directory, which a
// fresh volume gives to root).
const rabbitEntrypoint = `#!/bin/sh
# warren lab RabbitMQ image entrypoint (see lab/k8s/image.go).
set -e
home=/var/lib/rabbitmq
if [ -n "$RABBITMQ_ERLANG_COOKIE" ]; then
	rm -f "$home/.erlang.cookie"
	(umask 077 && printf '%s' "$RABBITMQ_ERLANG_COOKIE" > "$home/.erlang.cookie")
	unset RABBITMQ_ERLANG_COOKIE
fi
if [ "$(id -u)" = 0 ]; then
	chown -R rabbitmq:rabbitmq "$home"
	exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$@"
fi
exec "$@"
`

// rabbitDefaults mirror the official image's /etc/rabbitmq/conf.d defaults.
const rabbitDefaults = `# warren lab image defaults, like the rabbitmq Docker image's.
loopback_users.guest = false
listeners.tcp.default = 5672
management.tcp.port = 15672
`

// buildRabbitMQImage debootstraps a minimal bookworm, installs Debian's
// rabbitmq-server in it, and packs it as a one-layer image.
func (l *Lab) buildRabbitMQImage(ctx context.Context) error {
	root := l.path("src", "rabbitmq-rootfs")
	logPath := l.buildLog("rabbitmq")
	unmountUnder(root)
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("remove the old root filesystem: %w", err)
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	// Downloaded packages are kept, so a rebuild does not fetch them again.
	debs := l.path("src", "debootstrap-debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	if err := runLogged(ctx, env, l.Dir, logPath, "debootstrap", "--variant=minbase", "--cache-dir="+debs, debianSuite, root, debianMirror); err != nil {
		return err
	}
	files := map[string]string{
		// Never start a broker inside the chroot: it would share this
		// machine's network and ports.
		"usr/sbin/policy-rc.d": "#!/bin/sh\nexit 101\n",
		"etc/apt/sources.list": fmt.Sprintf("deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n",
			debianMirror, debianSuite, debianMirror, debianSuite, debianSec, debianSuite),
		"etc/resolv.conf": mustRead("/etc/resolv.conf"),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o755); err != nil {
			return err
		}
	}
	// uid/gid 999 like the official image, so pod specs written for it
	// (runAsUser: 999, fsGroup: 999) work unchanged.
	chroot := func(args ...string) error {
		return runLogged(ctx, env, l.Dir, logPath, append([]string{"chroot", root}, args...)...)
	}
	for _, args := range [][]string{
		{"groupadd", "--system", "--gid", "999", "rabbitmq"},
		{"useradd", "--system", "--uid", "999", "--gid", "999", "--home-dir", "/var/lib/rabbitmq", "--no-create-home", "--shell", "/usr/sbin/nologin", "rabbitmq"},
		{"apt-get", "update", "-q"},
		{"apt-get", "install", "-y", "-q", "--no-install-recommends", "rabbitmq-server"},
		{"apt-get", "clean"},
	} {
		if err := chroot(args...); err != nil {
			return err
		}
	}
	for name, content := range map[string]string{
		"usr/local/bin/docker-entrypoint.sh":   rabbitEntrypoint,
		"etc/rabbitmq/conf.d/10-defaults.conf": rabbitDefaults,
		"etc/rabbitmq/enabled_plugins":         "[rabbitmq_management,rabbitmq_prometheus].\n",
		"etc/resolv.conf":                      "",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "usr/local/bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			return err
		}
	}
	for _, d := range []string{"var/lib/rabbitmq", "var/log/rabbitmq", "etc/rabbitmq"} {
		if err := os.Chown(filepath.Join(root, d), 999, 999); err != nil {
			return err
		}
	}
	// The package's postinst generated a cookie: every container of the
	// image would share it, and it is read-only, so the entrypoint could
	// not replace it. RabbitMQ makes one at first start when none is given.
	_ = os.Remove(filepath.Join(root, "var/lib/rabbitmq/.erlang.cookie"))
	for _, d := range []string{"var/lib/apt/lists", "var/cache/apt", "var/log/apt", "tmp"} {
		_ = os.RemoveAll(filepath.Join(root, d))
		_ = os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	_ = os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	layer := root + ".layer.tar"
	defer os.Remove(layer)
	// GNU tar keeps owners, modes, hard links and capabilities exactly;
	// /dev, /proc and /sys are filled in by the runtime.
	if err := runLogged(ctx, env, root, logPath, "tar", "--numeric-owner", "--xattrs", "--sort=name",
		"--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "-cf", layer, "."); err != nil {
		return err
	}
	err := WriteImageArchive(l.imageArchive(RabbitMQImage), RabbitMQImage, layer, ImageConfig{
		Entrypoint: []string{"docker-entrypoint.sh"},
		// The server script itself: Debian's /usr/sbin wrapper would send
		// its output to /var/log/rabbitmq/startup_log instead of stdout.
		Cmd: []string{"/usr/lib/rabbitmq/bin/rabbitmq-server"},
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/rabbitmq/bin",
			"HOME=/var/lib/rabbitmq",
			"LANG=C.UTF-8",
			// Logs to stdout, where kubectl logs and ctr find them.
			"RABBITMQ_LOGS=-",
		},
		ExposedPorts: map[string]struct{}{"4369/tcp": {}, "5671/tcp": {}, "5672/tcp": {}, "15672/tcp": {}, "15691/tcp": {}, "15692/tcp": {}, "25672/tcp": {}},
	})
	if err != nil {
		return err
	}
	return os.RemoveAll(root)
}

func mustRead(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// importImages loads the lab's images into containerd unless it has them
// from the same archive (an image rebuilt since is imported again).
func (l *Lab) importImages(ctx context.Context) error {
	out, err := l.ctr(ctx, "images", "ls", "-q")
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, name := range strings.Fields(string(out)) {
		have[name] = true
	}
	marks := l.path("containerd", "warren-imported.json")
	imported := map[string]string{}
	if data, err := os.ReadFile(marks); err == nil {
		_ = json.Unmarshal(data, &imported)
	}
	for _, image := range []string{PauseImage, RabbitMQImage} {
		st, err := os.Stat(l.imageArchive(image))
		if err != nil {
			return fmt.Errorf("image %s is not built (run `warren lab k8s build`): %w", image, err)
		}
		stamp := fmt.Sprintf("%d-%d", st.Size(), st.ModTime().UnixNano())
		if have[image] && imported[image] == stamp {
			continue
		}
		start := time.Now()
		if _, err := l.ctr(ctx, "images", "import", l.imageArchive(image)); err != nil {
			return fmt.Errorf("import %s: %w", image, err)
		}
		slog.Info("imported image", "image", image, "took", time.Since(start).Round(100*time.Millisecond))
		imported[image] = stamp
		data, _ := json.Marshal(imported)
		if err := os.WriteFile(marks, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ctr runs containerd's client against the lab's containerd.
func (l *Lab) ctr(ctx context.Context, args ...string) ([]byte, error) {
	return run(ctx, os.Environ(), "", append([]string{"ctr", "--address", l.containerdSock(), "-n", CtrNamespace}, args...)...)
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) []string {
	var done []string
	for _, m := range mountsUnder(dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err == nil {
			done = append(done, m)
		}
	}
	return done
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	// Deeper mounts first; later mounts of the same point first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	sortByDepth(out)
	return out
}

func sortByDepth(paths []string) {
	for i := 1; i < len(paths); i++ {
		for j := i; j > 0 && strings.Count(paths[j], "/") > strings.Count(paths[j-1], "/"); j-- {
			paths[j], paths[j-1] = paths[j-1], paths[j]
		}
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
