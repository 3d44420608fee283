package components

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Where the pods see their configuration. RABBITMQ_CONFIG_FILES and
// RABBITMQ_ENABLED_PLUGINS_FILE point RabbitMQ here, so the same layout works
// for the official image and for distribution packages with other defaults.
const (
	confDir         = "/etc/warren/conf.d"
	pluginsDir      = "/etc/warren/plugins"
	tlsDir          = "/etc/warren/tls"
	confKey         = "rabbitmq.conf"
	pluginsKey      = "enabled_plugins"
	confFileName    = "10-warren.conf"
	defaultUserFile = "11-default_user.conf"
)

// basePlugins are always on: the UI and API, Kubernetes peer discovery, the
// shovels `warren migrate` drains through, and metrics.
var basePlugins = []string{
	"rabbitmq_management",
	"rabbitmq_peer_discovery_k8s",
	"rabbitmq_shovel",
	"rabbitmq_shovel_management",
	"rabbitmq_prometheus",
}

// plugins is the enabled plugin list, without duplicates.
func plugins(cfg *Config) []string {
	out := append([]string{}, basePlugins...)
	for _, p := range cfg.AdditionalPlugins {
		if !containsString(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// enabledPlugins is the enabled_plugins file (an Erlang term).
func enabledPlugins(cfg *Config) string {
	return "[" + strings.Join(plugins(cfg), ",") + "].\n"
}

// rabbitmqConf renders rabbitmq.conf. Sizes are written in bytes, which
// every RabbitMQ version parses the same way.
func rabbitmqConf(cfg *Config) string {
	n := cfg.Names()
	var b strings.Builder
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s = %v\n", k, v) }

	b.WriteString("## Written by warren's RabbitCluster component; edit the stack config instead.\n")
	kv("cluster_name", cfg.Name)
	// Peer discovery asks the API server for the headless Service's endpoints
	// and turns each into pod-name + hostname_suffix, matching RABBITMQ_NODENAME.
	kv("cluster_formation.peer_discovery_backend", "rabbit_peer_discovery_k8s")
	kv("cluster_formation.k8s.host", "kubernetes.default")
	kv("cluster_formation.k8s.address_type", "hostname")
	kv("cluster_formation.k8s.service_name", n.HeadlessService())
	kv("cluster_formation.k8s.hostname_suffix", n.hostSuffix())
	// A pod that comes back after its peers moved on must not be removed from
	// the cluster by the others: only warn.
	kv("cluster_formation.node_cleanup.only_log_warning", "true")
	kv("cluster_partition_handling", "pause_minority")
	if cfg.DefaultQueueType != "" {
		kv("default_queue_type", cfg.DefaultQueueType)
	}
	// New quorum queues (and streams) get their leader on the node hosting
	// the fewest leaders, not on the node the declaring client happens to be
	// connected to: apps behind the client Service would otherwise pile
	// leaders up on whichever node. Known to rabbit.schema since 3.10.0.
	kv("queue_leader_locator", "balanced")
	if hasDefinitions(cfg) {
		// Users, vhosts and permissions, imported by every node at every boot
		// (see definitionsJSON).
		kv("load_definitions", definitionsDir+"/"+definitionsKey)
	}

	// Memory: RabbitMQ cannot see the container's limit, so it is told.
	kv("total_memory_available_override_value", cfg.TotalMemoryAvailable())
	kv("vm_memory_high_watermark.relative", cfg.MemoryHighWatermark)
	kv("disk_free_limit.absolute", cfg.DiskFreeLimit.Value())

	// Logs go to the console, where kubectl logs finds them.
	kv("log.console", "true")
	kv("log.console.level", "info")
	kv("log.file", "false")

	if cfg.DisablePlainListeners {
		kv("listeners.tcp", "none")
	} else {
		kv("listeners.tcp.default", PortAMQP)
		kv("management.tcp.port", PortManagement)
		kv("prometheus.tcp.port", PortPrometheus)
	}
	if cfg.TLSEnabled {
		// Setting management.ssl.* without management.tcp.* is what turns the
		// plain management listener off.
		for _, prefix := range []string{"ssl_options", "management.ssl", "prometheus.ssl"} {
			kv(prefix+".cacertfile", tlsDir+"/ca.crt")
			kv(prefix+".certfile", tlsDir+"/tls.crt")
			kv(prefix+".keyfile", tlsDir+"/tls.key")
		}
		kv("listeners.ssl.default", PortAMQPS)
		kv("management.ssl.port", PortManagementTLS)
		kv("prometheus.ssl.port", PortPrometheusTLS)
		// Clients may present certificates but need not: the admin user logs
		// in with a password.
		kv("ssl_options.verify", "verify_peer")
		kv("ssl_options.fail_if_no_peer_cert", "false")
	}
	return b.String()
}

// configHash changes whenever the configuration does; as a pod template
// annotation it makes a config change roll the pods.
func configHash(cfg *Config) string {
	h := sha256.Sum256([]byte(rabbitmqConf(cfg) + "\x00" + enabledPlugins(cfg)))
	return hex.EncodeToString(h[:])
}

// configMap holds rabbitmq.conf and enabled_plugins.
func (b *builder) configMap() (*corev1.ConfigMap, error) {
	cm, err := corev1.NewConfigMap(b.ctx, b.resourceName("server-conf"), &corev1.ConfigMapArgs{
		Metadata: b.meta(b.names.ConfigMap()),
		Data: pulumi.StringMap{
			confKey:    pulumi.String(rabbitmqConf(b.cfg)),
			pluginsKey: pulumi.String(enabledPlugins(b.cfg)),
		},
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s: %w", b.names.ConfigMap(), err)
	}
	return cm, nil
}
