package k8s

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// daemon is one long-running process of the lab.
type daemon struct {
	name string
	// exe is the binary; a pid file only counts when /proc/PID/exe is it,
	// so a recycled pid is never taken for (or killed as) a lab daemon.
	exe   func(l *Lab) string
	args  func(l *Lab) []string
	ready func(ctx context.Context, l *Lab) error
	// configs are the files under run/ the daemon reads at start: a change
	// to one makes a running daemon stale, like a change of arguments.
	configs []string
}

func (l *Lab) containerdSock() string { return l.path("run", "containerd", "containerd.sock") }

// daemons in start order; Down stops them in reverse.
var daemons = []daemon{
	{
		name: "etcd",
		exe:  sys("/usr/bin/etcd"),
		args: func(l *Lab) []string {
			return []string{
				"--name=warren", "--data-dir=" + l.path("run", "etcd"),
				"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
				"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
				"--initial-cluster=warren=http://127.0.0.1:2380", "--listen-metrics-urls=http://127.0.0.1:2381",
				"--quota-backend-bytes=2147483648",
			}
		},
		ready: httpReady("http://127.0.0.1:2379/health", ""),
	},
	{
		name: "kube-apiserver",
		exe:  lab("kube-apiserver"),
		args: func(l *Lab) []string {
			return []string{
				"--etcd-servers=http://127.0.0.1:2379",
				"--bind-address=" + NodeIP, "--advertise-address=" + NodeIP, "--secure-port=" + strconv.Itoa(APIPort),
				"--service-cluster-ip-range=" + ServiceCIDR,
				"--tls-cert-file=" + l.certFile("apiserver"), "--tls-private-key-file=" + l.keyFile("apiserver"),
				"--client-ca-file=" + l.CAFile(),
				// No front proxy exists; naming a CA (and a client name no
				// certificate has) only stops the controllers logging, every
				// minute, that the request-header CA bundle is missing.
				"--requestheader-client-ca-file=" + l.CAFile(),
				"--requestheader-allowed-names=warren-no-front-proxy",
				"--requestheader-username-headers=X-Remote-User",
				"--requestheader-group-headers=X-Remote-Group",
				"--requestheader-extra-headers-prefix=X-Remote-Extra-",
				"--kubelet-client-certificate=" + l.certFile("apiserver-kubelet-client"),
				"--kubelet-client-key=" + l.keyFile("apiserver-kubelet-client"),
				"--kubelet-certificate-authority=" + l.CAFile(),
				// The node's name is not in any DNS this machine uses.
				"--kubelet-preferred-address-types=InternalIP",
				"--service-account-key-file=" + l.pki("sa.pub"),
				"--service-account-signing-key-file=" + l.pki("sa.key"),
				"--service-account-issuer=https://kubernetes.default.svc." + ClusterDomain,
				"--authorization-mode=Node,RBAC",
				"--enable-admission-plugins=NodeRestriction",
				"--allow-privileged=true",
				"--profiling=false",
				"--event-ttl=2h",
			}
		},
		ready: httpReady(APIServer()+"/readyz", "admin"),
	},
	{
		name:    "containerd",
		exe:     sys("/usr/bin/containerd"),
		args:    func(l *Lab) []string { return []string{"--config", l.path("run", "containerd.toml")} },
		configs: []string{"containerd.toml", "cni/net.d/10-warren.conflist"},
		ready: func(ctx context.Context, l *Lab) error {
			if err := l.importImages(ctx); err != nil {
				return err
			}
			return nil
		},
	},
	{
		name: "kube-controller-manager",
		exe:  lab("kube-controller-manager"),
		args: func(l *Lab) []string {
			kc := l.kubeconfigPath("controller-manager")
			return []string{
				"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
				"--bind-address=127.0.0.1", "--secure-port=10257",
				"--tls-cert-file=" + l.certFile("loopback-serving"), "--tls-private-key-file=" + l.keyFile("loopback-serving"),
				"--client-ca-file=" + l.CAFile(),
				"--service-account-private-key-file=" + l.pki("sa.key"),
				"--root-ca-file=" + l.CAFile(),
				"--use-service-account-credentials=true",
				"--service-cluster-ip-range=" + ServiceCIDR,
				"--cluster-name=warren-lab",
				"--leader-elect=false",
				"--profiling=false",
			}
		},
		ready: httpReady("https://127.0.0.1:10257/healthz", ""),
	},
	{
		name: "kube-scheduler",
		exe:  lab("kube-scheduler"),
		args: func(l *Lab) []string {
			kc := l.kubeconfigPath("scheduler")
			return []string{
				"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
				"--bind-address=127.0.0.1", "--secure-port=10259",
				"--tls-cert-file=" + l.certFile("loopback-serving"), "--tls-private-key-file=" + l.keyFile("loopback-serving"),
				"--client-ca-file=" + l.CAFile(),
				"--leader-elect=false",
				"--profiling=false",
			}
		},
		ready: httpReady("https://127.0.0.1:10259/healthz", ""),
	},
	{
		name: "kubelet",
		exe:  lab("kubelet"),
		args: func(l *Lab) []string {
			return []string{
				"--config=" + l.path("run", "kubelet.yaml"),
				"--kubeconfig=" + l.kubeconfigPath("kubelet"),
				"--hostname-override=" + NodeName,
				"--node-ip=" + NodeIP,
				"--root-dir=" + l.path("run", "kubelet"),
				"--v=1",
			}
		},
		configs: []string{"kubelet.yaml"},
		ready:   httpReady("http://127.0.0.1:10248/healthz", ""),
	},
	{
		name: "kube-proxy",
		exe:  lab("kube-proxy"),
		args: func(l *Lab) []string {
			return []string{"--config=" + l.path("run", "kube-proxy.yaml")}
		},
		configs: []string{"kube-proxy.yaml"},
		ready:   httpReady("http://127.0.0.1:10256/healthz", ""),
	},
	{
		name: "coredns",
		exe:  lab("coredns"),
		args: func(l *Lab) []string {
			return []string{"-conf", l.path("run", "Corefile")}
		},
		configs: []string{"Corefile"},
		ready:   httpReady("http://127.0.0.1:18181/ready", ""),
	},
}

func sys(path string) func(*Lab) string { return func(*Lab) string { return path } }
func lab(name string) func(*Lab) string { return func(l *Lab) string { return l.Bin(name) } }

// httpReady checks an HTTP health endpoint, over TLS trusting the lab CA,
// with a client identity when one is given.
func httpReady(url, identity string) func(context.Context, *Lab) error {
	return func(ctx context.Context, l *Lab) error {
		client := &http.Client{Timeout: 3 * time.Second}
		if strings.HasPrefix(url, "https:") {
			cfg, err := l.tlsConfig(identity)
			if err != nil {
				return err
			}
			client.Transport = &http.Transport{TLSClientConfig: cfg}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// writeConfigs renders every daemon's config file. It is cheap and runs on
// every Up, so a changed lab version takes effect at the next start.
func (l *Lab) writeConfigs() error {
	files := map[string]string{
		"containerd.toml":              l.containerdConfig(),
		"cni/net.d/10-warren.conflist": l.cniConfig(),
		"kubelet.yaml":                 l.kubeletConfig(),
		"kube-proxy.yaml":              l.kubeProxyConfig(),
		"Corefile":                     l.corefile(),
	}
	for name, content := range files {
		p := l.path("run", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		// Only when changed: kube-proxy exits when its config file is
		// written, even with the same content.
		if old, err := os.ReadFile(p); err == nil && string(old) == content {
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// containerdConfig follows what this kind of machine needs: cgroupfs (no
// systemd), restrict_oom_score_adj because root lacks CAP_SYS_RESOURCE here
// (without it every sandbox fails with "can't get final child's PID from
// pipe: EOF"), and the local pause image since no registry is reachable.
// Its socket and state are the lab's own, so it never meets another
// containerd on the machine.
func (l *Lab) containerdConfig() string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, l.path("containerd"), l.path("run", "containerd", "state"), l.containerdSock(), PauseImage, CNIBinDir, l.path("run", "cni", "net.d"))
}

// cniConfig puts pods on the lab's bridge. No masquerading: pods talk only
// to each other and to this machine (the bridge address is the node).
func (l *Lab) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "warren",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, Bridge, l.path("run", "cni", "ipam"), PodCIDR, NodeIP)
}

// kubeletConfig: cgroupfs and failCgroupV1: false because this machine has
// cgroup v1 and no systemd. Eviction and image GC thresholds are relaxed:
// the disk is shared with other builds, and an image garbage-collected here
// cannot be pulled back.
func (l *Lab) kubeletConfig() string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %s
tlsPrivateKeyFile: %s
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
clusterDomain: %s
clusterDNS:
- %s
resolvConf: ""
podLogsDir: %s
hairpinMode: hairpin-veth
serializeImagePulls: false
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 110
`, l.containerdSock(), NodeIP, l.certFile("kubelet-serving"), l.keyFile("kubelet-serving"), l.CAFile(), ClusterDomain, NodeIP, l.path("run", "pod-logs"))
}

// kubeProxyConfig keeps kube-proxy from changing machine-wide settings
// (conntrack table size and timeouts, route_localnet: "0" means leave as
// is) and NodePorts off other interfaces.
func (l *Lab) kubeProxyConfig() string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
mode: iptables
clusterCIDR: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses:
- %s/32
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
`, l.kubeconfigPath("kube-proxy"), NodeName, PodCIDR, NodeIP)
}

// corefile serves the cluster domain on the node address, the pods'
// nameserver. Names outside the cluster get NXDOMAIN: the lab has no
// business resolving anything else. No cache: a pod that comes back gets
// a new address, and RabbitMQ peers must resolve it at once (a stale or
// negative answer is what makes a rejoining node hang, see
// testdata/rabbitmq.yaml); a one-node lab's DNS load is nothing.
func (l *Lab) corefile() string {
	return fmt.Sprintf(`%[1]s:53 in-addr.arpa:53 ip6.arpa:53 {
    bind %[2]s
    errors
    ready 127.0.0.1:18181
    kubernetes %[1]s in-addr.arpa ip6.arpa {
        kubeconfig %[3]s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
}
.:53 {
    bind %[2]s
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`, ClusterDomain, NodeIP, l.kubeconfigPath("coredns"))
}
