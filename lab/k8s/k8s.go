// Package k8s runs warren's local Kubernetes lab: a one-node Kubernetes
// cluster built from source on this machine, with no registry and no
// systemd, so that warren's whole story (deploy a RabbitMQ cluster, migrate
// a broker into it, verify) can run for real on a CI machine.
//
// Everything it builds or keeps lives in one fixed directory outside the
// repository, ~/.cache/warren/k8s (WARREN_K8S_DIR):
//
//	bin/        kube-apiserver, kube-controller-manager, kube-scheduler,
//	            kubelet, kube-proxy, kubectl, coredns, crictl
//	images/     pause and RabbitMQ image archives (docker-archive, one layer)
//	src/        the generated wrapper module that builds Kubernetes
//	pki/        the lab CA, component certificates, service account key
//	containerd/ containerd's content store (imported images survive `down`)
//	run/        pid files, daemon logs, etcd data, kubelet dir, volumes
//	failure/    the logs of the last failed test run
//	kubeconfig  the admin kubeconfig (`warren lab k8s env`)
//
// The lab is driven by `warren lab k8s build|up|down|status|env|collect` and
// `warren lab k8s source up|down`. Daemons are started by this package
// directly (Go calling the binaries) rather than by shell scripts, so that
// the same code serves the CLI and the tests, and every wait is bounded by
// a context.
package k8s

import (
	"fmt"
	"os"
	"path/filepath"
)

// Versions of what the lab builds.
const (
	KubernetesVersion = "v1.37.2"
	// StagingVersion is the version of Kubernetes' staging modules
	// (k8s.io/api, k8s.io/client-go, ...) that matches KubernetesVersion.
	StagingVersion = "v0.37.2"
	CoreDNSVersion = "v1.12.1"
	CrictlVersion  = "v1.37.0"
)

// Images the lab builds and loads into containerd. Pods must use them with
// imagePullPolicy: Never, because no registry is reachable.
const (
	// RabbitMQImage is Debian bookworm's rabbitmq-server in a one-layer
	// image. It behaves like rabbitmq:3-management: entrypoint takes the
	// Erlang cookie from RABBITMQ_ERLANG_COOKIE, config goes in
	// /etc/rabbitmq/conf.d/*.conf, data in /var/lib/rabbitmq, user
	// rabbitmq is uid/gid 999, logs go to stdout, management is enabled.
	RabbitMQImage = "warren.local/rabbitmq:3.10-debian"
	// PauseImage is the pod sandbox image: a static program that waits.
	PauseImage = "warren.local/pause:3.10"
)

// Network and naming of the lab cluster. All addresses are ranges the lab
// creates itself on this machine.
const (
	NodeName      = "warren-node"
	Bridge        = "warren0"
	NodeIP        = "10.244.0.1" // the bridge's address: the node, apiserver and DNS
	PodCIDR       = "10.244.0.0/24"
	ServiceCIDR   = "10.96.0.0/16"
	APIServiceIP  = "10.96.0.1" // the `kubernetes` Service
	ClusterDomain = "cluster.local"
	APIPort       = 6443
	// StorageClass is the default StorageClass: local PersistentVolumes
	// from a pool that `up` keeps stocked (see volumes.go).
	StorageClass = "warren-local"
	// CtrNamespace is containerd's namespace for the CRI; the source
	// container lives there too so the image is imported once.
	CtrNamespace = "k8s.io"
)

// EnvDir moves the lab's directory.
const EnvDir = "WARREN_K8S_DIR"

// Lab is the Kubernetes lab rooted at Dir.
type Lab struct {
	Dir string
}

// Default returns the lab in WARREN_K8S_DIR, or ~/.cache/warren/k8s.
func Default() (*Lab, error) {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("find a cache directory for the Kubernetes lab (set %s): %w", EnvDir, err)
		}
		dir = filepath.Join(cache, "warren", "k8s")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", EnvDir, dir, err)
	}
	return &Lab{Dir: dir}, nil
}

func (l *Lab) path(elem ...string) string { return filepath.Join(append([]string{l.Dir}, elem...)...) }

// Bin is the path of one of the lab's binaries ("kubectl", "kubelet", ...).
func (l *Lab) Bin(name string) string { return l.path("bin", name) }

// Kubeconfig is the admin kubeconfig of the lab cluster.
func (l *Lab) Kubeconfig() string { return l.path("kubeconfig") }

// RunDir holds pid files, logs and the cluster's state while it runs.
func (l *Lab) RunDir() string { return l.path("run") }

// LogDir holds one log file per daemon.
func (l *Lab) LogDir() string { return l.path("run", "logs") }

// FailureDir is where a failed test leaves daemon logs, pod logs and events.
func (l *Lab) FailureDir() string { return l.path("failure") }

// APIServer is the URL of the lab's apiserver.
func APIServer() string { return fmt.Sprintf("https://%s:%d", NodeIP, APIPort) }

// Env are the variables that point tools at the lab: KUBECONFIG, the
// image and StorageClass to deploy with, and the source container.
// WARREN_SOURCE_URL uses the node address, which this machine and the pods
// both reach, so the same URL serves warren and the shovels it declares
// in the target pods; the vhost is spelled out because to RabbitMQ's
// Erlang client (shovels, federation) a bare trailing "/" is the empty
// vhost, not "/". The HTTP API is used by warren only, on loopback.
func (l *Lab) Env() map[string]string {
	url := fmt.Sprintf("amqp://%s:%s@%s:%d/%%2F", SourceUser, SourcePassword, NodeIP, SourceAMQPPort)
	return map[string]string{
		"KUBECONFIG":                 l.Kubeconfig(),
		"WARREN_K8S_IMAGE":           RabbitMQImage,
		"WARREN_K8S_STORAGE_CLASS":   StorageClass,
		"WARREN_K8S_NODE_IP":         NodeIP,
		"WARREN_SOURCE_URL":          url,
		"WARREN_SOURCE_API":          fmt.Sprintf("http://127.0.0.1:%d", SourceAPIPort),
		"WARREN_K8S_SOURCE_POD_URL":  url,
		"WARREN_K8S_SOURCE_POD_HOST": NodeIP,
	}
}
