package components

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPodsCarryPrometheusAnnotations(t *testing.T) {
	anno := strMap(t, deploy(t, nil).find(t, tStatefulSet, "rabbitmq-server"), "spec.template.metadata.annotations")
	assert.Equal(t, "true", anno["prometheus.io/scrape"])
	assert.Equal(t, "15692", anno["prometheus.io/port"])
	assert.Equal(t, "/metrics", anno["prometheus.io/path"])
	assert.Equal(t, "http", anno["prometheus.io/scheme"])
	assert.Len(t, anno[configHashAnno], 64, "the config hash stays")

	anno = strMap(t, deploy(t, map[string]string{"tlsEnabled": "true", "disablePlainListeners": "true"}).find(t, tStatefulSet, "rabbitmq-server"), "spec.template.metadata.annotations")
	assert.Equal(t, "15691", anno["prometheus.io/port"], "TLS only: the HTTPS metrics listener")
	assert.Equal(t, "https", anno["prometheus.io/scheme"])
}

func TestServiceMonitorOffByDefault(t *testing.T) {
	m := deploy(t, nil)
	assert.Empty(t, m.ofType(tSvcMonitor))
	assert.Empty(t, m.ofType(tCRD), "no CRD lookup either")
}

func TestServiceMonitor(t *testing.T) {
	m := deploy(t, map[string]string{"serviceMonitor": "true", "namespace": "mq", "serviceMonitorLabels": `{"release":"kube-prometheus-stack"}`})
	sm := m.find(t, tSvcMonitor, "rabbitmq-service-monitor")
	assert.Equal(t, "monitoring.coreos.com/v1", str(t, sm, "apiVersion"))
	assert.Equal(t, "ServiceMonitor", str(t, sm, "kind"))
	assert.Equal(t, "rabbitmq", str(t, sm, "metadata.name"))
	assert.Equal(t, "mq", str(t, sm, "metadata.namespace"))
	labels := strMap(t, sm, "metadata.labels")
	assert.Equal(t, "kube-prometheus-stack", labels["release"], "the label a Prometheus selects ServiceMonitors by")
	assert.Equal(t, "warren", labels["app.kubernetes.io/part-of"])

	client := m.find(t, tService, "rabbitmq-client")
	selector := strMap(t, sm, "spec.selector.matchLabels")
	clientLabels := strMap(t, client, "metadata.labels")
	for k, v := range selector {
		assert.Equal(t, v, clientLabels[k], "the ServiceMonitor selects the client Service (%s)", k)
	}
	assert.Equal(t, []string{"mq"}, strs(t, sm, "spec.namespaceSelector.matchNames"))
	eps := items(t, sm, "spec.endpoints")
	require.Len(t, eps, 1)
	assert.Equal(t, "prometheus", str(t, eps[0], "port"))
	assert.Equal(t, "/metrics", str(t, eps[0], "path"))
	assert.Equal(t, "http", str(t, eps[0], "scheme"))
	assert.False(t, has(eps[0], "tlsConfig"))
	// The port it names exists on the client Service, and not on the
	// headless one (which would scrape every pod twice).
	byName(t, items(t, client, "spec.ports"), "prometheus")
	for _, p := range items(t, m.find(t, tService, "rabbitmq-nodes"), "spec.ports") {
		assert.NotEqual(t, "prometheus", str(t, p, "name"))
	}
}

func TestServiceMonitorTLSOnly(t *testing.T) {
	m := deploy(t, map[string]string{"serviceMonitor": "true", "tlsEnabled": "true", "disablePlainListeners": "true"})
	ep := items(t, m.find(t, tSvcMonitor, "rabbitmq-service-monitor"), "spec.endpoints")[0]
	assert.Equal(t, "prometheus-tls", str(t, ep, "port"))
	assert.Equal(t, "https", str(t, ep, "scheme"))
	assert.Equal(t, "rabbitmq-tls", str(t, ep, "tlsConfig.ca.secret.name"))
	assert.Equal(t, "ca.crt", str(t, ep, "tlsConfig.ca.secret.key"))
	assert.Equal(t, "rabbitmq.default.svc", str(t, ep, "tlsConfig.serverName"), "a name the server certificate covers")
	byName(t, items(t, m.find(t, tService, "rabbitmq-client"), "spec.ports"), "prometheus-tls")
}

// With the switch on, the program first reads the CRD from the cluster and
// every child waits for that read: on a cluster without the Prometheus
// Operator the read fails and nothing is created.
func TestServiceMonitorWaitsForItsCRD(t *testing.T) {
	m := deploy(t, map[string]string{"serviceMonitor": "true"})
	crd := m.args(t, tCRD, "servicemonitor-crd")
	require.NotNil(t, crd.ReadRPC, "the CRD is read, never created")
	assert.Equal(t, ServiceMonitorCRD, crd.ID)
	m.mu.Lock()
	defer m.mu.Unlock()
	checked := 0
	for _, r := range m.resources {
		if !strings.HasPrefix(r.TypeToken, "kubernetes:") || r.TypeToken == tCRD {
			continue
		}
		require.NotNil(t, r.RegisterRPC, r.Name)
		deps := strings.Join(r.RegisterRPC.GetDependencies(), " ")
		assert.Contains(t, deps, "servicemonitor-crd", "%s must wait for the CRD check", r.Name)
		checked++
	}
	assert.Equal(t, 12, checked, m.summary())
}

// Rendering has no cluster: no CRD read, the ServiceMonitor is written.
func TestServiceMonitorRenderSkipsCRDCheck(t *testing.T) {
	cfg, keys := withSecrets(map[string]string{"warren:serviceMonitor": "true"})
	m, err := runProgram(t, NewProgram(Options{RenderDir: t.TempDir()}), cfg, keys, false)
	require.NoError(t, err)
	assert.Empty(t, m.ofType(tCRD))
	assert.Equal(t, []string{"rabbitmq-service-monitor"}, m.ofType(tSvcMonitor))
}
