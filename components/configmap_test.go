package components

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// confLines parses rabbitmq.conf into key -> value, failing on duplicates
// (cuttlefish would take the last one silently).
func confLines(t *testing.T, conf string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(conf, "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		require.Truef(t, ok, "bad line %q", line)
		_, dup := out[k]
		require.Falsef(t, dup, "duplicate key %s", k)
		out[k] = v
	}
	return out
}

func TestConfigMapDefaults(t *testing.T) {
	m := deploy(t, nil)
	cm := m.find(t, tConfigMap, "rabbitmq-server-conf")
	assert.Equal(t, "rabbitmq-server-conf", str(t, cm, "metadata.name"))
	data := strMap(t, cm, "data")
	conf := confLines(t, data[confKey])
	assert.Equal(t, "rabbitmq", conf["cluster_name"])
	assert.Equal(t, "rabbit_peer_discovery_k8s", conf["cluster_formation.peer_discovery_backend"])
	assert.Equal(t, "rabbitmq-nodes", conf["cluster_formation.k8s.service_name"])
	assert.Equal(t, ".rabbitmq-nodes.default", conf["cluster_formation.k8s.hostname_suffix"])
	assert.Equal(t, "hostname", conf["cluster_formation.k8s.address_type"])
	assert.Equal(t, "quorum", conf["default_queue_type"])
	assert.Equal(t, "pause_minority", conf["cluster_partition_handling"])
	assert.Equal(t, "balanced", conf["queue_leader_locator"], "new quorum queues spread their leaders over the nodes")
	// 2Gi less a fifth of headroom.
	assert.Equal(t, "1717986919", conf["total_memory_available_override_value"])
	assert.Equal(t, "0.4", conf["vm_memory_high_watermark.relative"])
	assert.Equal(t, "2147483648", conf["disk_free_limit.absolute"])
	assert.Equal(t, "5672", conf["listeners.tcp.default"])
	assert.Equal(t, "15672", conf["management.tcp.port"])
	assert.NotContains(t, conf, "listeners.ssl.default")
	assert.NotContains(t, data[confKey], "default_pass", "the password belongs in the Secret")

	assert.Equal(t, "[rabbitmq_management,rabbitmq_peer_discovery_k8s,rabbitmq_shovel,rabbitmq_shovel_management,rabbitmq_prometheus].\n", data[pluginsKey])
}

func TestConfigMapTLSAndPlainListenersOff(t *testing.T) {
	conf := confLines(t, strMap(t, deploy(t, map[string]string{"tlsEnabled": "true"}).find(t, tConfigMap, "rabbitmq-server-conf"), "data")[confKey])
	assert.Equal(t, "5671", conf["listeners.ssl.default"])
	assert.Equal(t, "15671", conf["management.ssl.port"])
	assert.Equal(t, "/etc/warren/tls/tls.crt", conf["ssl_options.certfile"])
	assert.Equal(t, "/etc/warren/tls/tls.key", conf["management.ssl.keyfile"])
	assert.Equal(t, "/etc/warren/tls/ca.crt", conf["ssl_options.cacertfile"])
	assert.Equal(t, "5672", conf["listeners.tcp.default"], "plain AMQP stays on unless turned off")

	conf = confLines(t, strMap(t, deploy(t, map[string]string{"tlsEnabled": "true", "disablePlainListeners": "true"}).find(t, tConfigMap, "rabbitmq-server-conf"), "data")[confKey])
	assert.Equal(t, "none", conf["listeners.tcp"])
	assert.NotContains(t, conf, "listeners.tcp.default")
	assert.NotContains(t, conf, "management.tcp.port", "management.ssl without management.tcp turns plain HTTP off")
	assert.NotContains(t, conf, "prometheus.tcp.port")
}

func TestConfigMapSettings(t *testing.T) {
	m := deploy(t, map[string]string{
		"name": "orders", "namespace": "mq", "memoryLimit": "16Gi", "memoryHighWatermark": "0.6",
		"diskFreeLimit": "5Gi", "defaultQueueType": "", "additionalPlugins": `["rabbitmq_mqtt","rabbitmq_shovel"]`,
	})
	data := strMap(t, m.find(t, tConfigMap, "orders-server-conf"), "data")
	conf := confLines(t, data[confKey])
	assert.Equal(t, "orders", conf["cluster_name"])
	assert.Equal(t, ".orders-nodes.mq", conf["cluster_formation.k8s.hostname_suffix"])
	assert.Equal(t, "15032385536", conf["total_memory_available_override_value"], "16Gi less the 2Gi headroom cap")
	assert.Equal(t, "0.6", conf["vm_memory_high_watermark.relative"])
	assert.Equal(t, "5368709120", conf["disk_free_limit.absolute"])
	assert.NotContains(t, conf, "default_queue_type", "empty defaultQueueType leaves it out, for images before 3.13")
	assert.Equal(t, "[rabbitmq_management,rabbitmq_peer_discovery_k8s,rabbitmq_shovel,rabbitmq_shovel_management,rabbitmq_prometheus,rabbitmq_mqtt].\n", data[pluginsKey])
}
