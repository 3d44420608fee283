package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sysctls the lab needs or that kubelet sets to its liking (it writes
// vm.overcommit_memory, kernel.panic, ... unless protectKernelDefaults).
// `up` saves their values before the first change and `down` puts them back,
// so the machine is left as it was found.
var sysctls = []string{
	"net/ipv4/ip_forward",
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

func (l *Lab) savedSysctls() string { return l.path("run", "sysctls.saved.json") }

// prepareHost saves sysctls, enables forwarding (a pod reaching a Service
// that kube-proxy sends back onto the bridge is forwarded) and creates the
// bridge with the node address, before any daemon needs it: the apiserver
// binds to it and pods reach this machine through it.
func (l *Lab) prepareHost(ctx context.Context) error {
	if _, err := os.Stat(l.savedSysctls()); errors.Is(err, fs.ErrNotExist) {
		saved := map[string]string{}
		for _, k := range sysctls {
			if v, err := os.ReadFile("/proc/sys/" + k); err == nil {
				saved[k] = strings.TrimSpace(string(v))
			}
		}
		data, _ := json.Marshal(saved)
		if err := os.MkdirAll(l.RunDir(), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(l.savedSysctls(), data, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable IP forwarding (are you root?): %w", err)
	}
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		// Services between pods on one bridge need bridged traffic to pass
		// iptables; the module may be built in or loadable.
		if _, err := run(ctx, os.Environ(), "", "modprobe", "br_netfilter"); err != nil {
			return fmt.Errorf("br_netfilter is needed for Services between pods: %w", err)
		}
	}
	_ = os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", []byte("1"), 0o644)
	if _, err := net.InterfaceByName(Bridge); err != nil {
		if _, err := run(ctx, os.Environ(), "", "ip", "link", "add", Bridge, "type", "bridge"); err != nil {
			return err
		}
	}
	if !hasAddr(Bridge, NodeIP) {
		if _, err := run(ctx, os.Environ(), "", "ip", "addr", "add", NodeIP+"/24", "dev", Bridge); err != nil {
			return err
		}
	}
	_, err := run(ctx, os.Environ(), "", "ip", "link", "set", Bridge, "up")
	return err
}

func hasAddr(iface, ip string) bool {
	i, err := net.InterfaceByName(iface)
	if err != nil {
		return false
	}
	addrs, _ := i.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.String() == ip {
			return true
		}
	}
	return false
}

// restoreHost deletes the bridge and puts the saved sysctls back.
func (l *Lab) restoreHost(ctx context.Context) error {
	var errs []error
	if _, err := net.InterfaceByName(Bridge); err == nil {
		if _, err := run(ctx, os.Environ(), "", "ip", "link", "del", Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	data, err := os.ReadFile(l.savedSysctls())
	if err == nil {
		saved := map[string]string{}
		if json.Unmarshal(data, &saved) == nil {
			for k, v := range saved {
				if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
					errs = append(errs, fmt.Errorf("restore %s=%s: %w", k, v, err))
				}
			}
		}
		if len(errs) == 0 {
			_ = os.Remove(l.savedSysctls())
		}
	}
	return errors.Join(errs...)
}

// ownedChain tells the iptables chains the lab's daemons create: kube-proxy
// and kubelet's KUBE-*, the CNI plugins' CNI-*. Nothing else is touched.
func ownedChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "CNI-")
}

// cleanIptables removes the lab's chains and the rules that jump to them,
// in every table, for IPv4 and IPv6, leaving every other rule alone.
func cleanIptables(ctx context.Context) error {
	var errs []error
	for _, bin := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			continue
		}
		for _, table := range []string{"nat", "filter", "mangle", "raw"} {
			out, err := run(ctx, os.Environ(), "", bin, "-w", "-t", table, "-S")
			if err != nil {
				continue // table not there
			}
			var chains []string
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				switch {
				case len(f) >= 2 && f[0] == "-N" && ownedChain(f[1]):
					chains = append(chains, f[1])
				case len(f) >= 2 && f[0] == "-A" && !ownedChain(f[1]) && jumpsToOwned(f):
					// A rule in a chain we do not own that jumps into ours:
					// delete exactly that rule.
					args := append([]string{bin, "-w", "-t", table, "-D"}, splitRule(line[3:])...)
					if _, err := run(ctx, os.Environ(), "", args...); err != nil {
						errs = append(errs, err)
					}
				}
			}
			for _, c := range chains {
				_, _ = run(ctx, os.Environ(), "", bin, "-w", "-t", table, "-F", c)
			}
			for _, c := range chains {
				if _, err := run(ctx, os.Environ(), "", bin, "-w", "-t", table, "-X", c); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func jumpsToOwned(f []string) bool {
	for i := 0; i+1 < len(f); i++ {
		if (f[i] == "-j" || f[i] == "-g") && ownedChain(f[i+1]) {
			return true
		}
	}
	return false
}

// splitRule splits an `iptables -S` rule into arguments, honouring the
// double quotes iptables puts around comments.
func splitRule(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inQuote, have = !inQuote, true
		case c == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// cleanNetns removes pod network namespaces that containerd left behind
// (cni-* in /var/run/netns, made only by a CRI runtime) once no process
// uses them; removing the namespace removes the pod's veth too.
func cleanNetns(ctx context.Context) {
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "cni-") {
			continue
		}
		out, err := run(ctx, os.Environ(), "", "ip", "netns", "pids", e.Name())
		if err != nil || strings.TrimSpace(string(out)) != "" {
			continue
		}
		if _, err := run(ctx, os.Environ(), "", "ip", "netns", "delete", e.Name()); err != nil {
			slog.Warn("could not remove a pod network namespace", "netns", e.Name(), "err", err)
		}
	}
}

// labCgroups are the cgroup v1 subtrees the lab's containers live in: the
// kubelet's pods under kubepods, and ctr's containers (the source broker)
// under the containerd namespace's name.
var labCgroups = []string{"kubepods", CtrNamespace}

// cleanCgroups kills any process still in the lab's cgroups (a container
// whose shim died with containerd) and removes the cgroup directories,
// deepest first, in every hierarchy.
func cleanCgroups(ctx context.Context) error {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup") // cgroup v2: one hierarchy
	var dirs []string
	for _, h := range hierarchies {
		if fi, err := os.Lstat(h); err != nil || !fi.IsDir() {
			continue // cpu,cpuacct style symlinks point at a real hierarchy
		}
		for _, name := range labCgroups {
			_ = filepath.WalkDir(filepath.Join(h, name), func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
		}
	}
	killed := false
	for _, d := range dirs {
		data, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				slog.Warn("killing a leftover container process", "pid", pid, "cgroup", d)
				_ = syscall.Kill(pid, syscall.SIGKILL)
				killed = true
			}
		}
	}
	if killed {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	sortByDepth(dirs)
	var errs []error
	for _, d := range dirs {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
