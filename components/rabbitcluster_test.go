package components

import (
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outputsOf builds a RabbitCluster from cfg under mocks and returns its
// resolved outputs.
func outputsOf(t *testing.T, over map[string]string) (map[string]string, *mocks) {
	t.Helper()
	c, err := parse(over)
	require.NoError(t, err)
	c.Secrets = Secrets{ErlangCookie: "cookie-0123456789abcdefghij", AdminPassword: "pw", TLSCert: "c", TLSKey: "k", TLSCACert: "ca"}
	var mu sync.Mutex
	got := map[string]string{}
	m, err := runProgram(t, func(ctx *pulumi.Context) error {
		rc, err := NewRabbitCluster(ctx, c.Name, c)
		if err != nil {
			return err
		}
		record := func(key string, o pulumi.StringOutput) {
			// Exported, so the run waits for the value before it returns.
			ctx.Export(key, o.ApplyT(func(v string) string {
				mu.Lock()
				defer mu.Unlock()
				got[key] = v
				return v
			}))
		}
		record("statefulSet", rc.StatefulSetName)
		record("client", rc.ClientServiceName)
		record("headless", rc.HeadlessServiceName)
		record("amqp", rc.AMQPURL)
		record("management", rc.ManagementURL)
		record("admin", rc.AdminSecretName)
		record("cookie", rc.ErlangCookieSecretName)
		record("tls", rc.TLSSecretName)
		record("app", rc.AppSecretName)
		return nil
	}, nil, nil, false)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	return got, m
}

func TestOutputs(t *testing.T) {
	out, _ := outputsOf(t, map[string]string{"namespace": "mq"})
	assert.Equal(t, map[string]string{
		"statefulSet": "rabbitmq-server",
		"client":      "rabbitmq",
		"headless":    "rabbitmq-nodes",
		"amqp":        "amqp://rabbitmq.mq.svc:5672/",
		"management":  "http://rabbitmq.mq.svc:15672/",
		"admin":       "rabbitmq-default-user",
		"cookie":      "rabbitmq-erlang-cookie",
		"tls":         "",
		"app":         "rabbitmq-app",
	}, out)

	out, _ = outputsOf(t, map[string]string{"tlsEnabled": "true", "disablePlainListeners": "true"})
	assert.Equal(t, "amqps://rabbitmq.default.svc:5671/", out["amqp"])
	assert.Equal(t, "https://rabbitmq.default.svc:15671/", out["management"])
	assert.Equal(t, "rabbitmq-tls", out["tls"])
}

// Every child hangs under the component, whose type is in the project's
// own namespace.
func TestComponentOwnsEveryChild(t *testing.T) {
	_, m := outputsOf(t, map[string]string{"createNamespace": "true", "tlsEnabled": "true"})
	var component string
	children := 0
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.resources {
		if r.TypeToken == TypeToken {
			component = r.Name
			assert.False(t, r.Custom)
		}
	}
	require.Equal(t, "rabbitmq", component)
	for _, r := range m.resources {
		if r.TypeToken == TypeToken || r.TypeToken == "pulumi:pulumi:Stack" {
			continue
		}
		children++
		require.NotNil(t, r.RegisterRPC)
		assert.Contains(t, r.RegisterRPC.GetParent(), "warren:rabbitmq:RabbitCluster::rabbitmq", r.Name)
	}
	// namespace, ConfigMap, 4 Secrets (cookie, admin, TLS, app),
	// ServiceAccount, Role, RoleBinding, 2 Services, StatefulSet, PDB.
	assert.Equal(t, 13, children, m.summary())
}

// With every optional child on, each still hangs under the component.
func TestComponentOwnsOptionalChildren(t *testing.T) {
	m := deployApp(t, map[string]string{"networkPolicy": "true", "serviceMonitor": "true"})
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range m.resources {
		switch r.TypeToken {
		case tNetPol, tSvcMonitor, tSecret:
			seen[r.Name] = true
			require.NotNil(t, r.RegisterRPC)
			assert.Contains(t, r.RegisterRPC.GetParent(), "warren:rabbitmq:RabbitCluster::rabbitmq", r.Name)
		}
	}
	for _, name := range []string{"rabbitmq-network-policy", "rabbitmq-service-monitor", "rabbitmq-definitions", "rabbitmq-app"} {
		assert.True(t, seen[name], name)
	}
}

// The stack files in the repository are valid and differ where they should.
func TestDevAndProdStacks(t *testing.T) {
	run := func(stack string) *mocks {
		cfg, keys := withSecrets(stackConfig(t, stack))
		m, err := runProgram(t, Program, cfg, keys, true)
		require.NoError(t, err, stack)
		return m
	}
	dev, prod := run("dev"), run("prod")

	devSts, prodSts := dev.find(t, tStatefulSet, "rabbitmq-server"), prod.find(t, tStatefulSet, "rabbitmq-server")
	assert.Equal(t, 3.0, num(t, devSts, "spec.replicas"))
	assert.GreaterOrEqual(t, num(t, prodSts, "spec.replicas"), 3.0)
	assert.Equal(t, "rabbitmq-dev", str(t, devSts, "metadata.namespace"))
	assert.Equal(t, "rabbitmq", str(t, prodSts, "metadata.namespace"))

	anti := "spec.template.spec.affinity.podAntiAffinity."
	assert.True(t, has(devSts, anti+"preferredDuringSchedulingIgnoredDuringExecution"), "dev: preferred anti-affinity")
	assert.True(t, has(prodSts, anti+"requiredDuringSchedulingIgnoredDuringExecution"), "prod: required anti-affinity")

	pvc := "spec.volumeClaimTemplates[0].spec.resources.requests.storage"
	assert.Equal(t, "2Gi", str(t, devSts, pvc))
	assert.Equal(t, "100Gi", str(t, prodSts, pvc), "prod: larger disks")

	mem := "spec.template.spec.containers[0].resources.limits.memory"
	assert.Equal(t, "1Gi", str(t, devSts, mem))
	assert.Equal(t, "8Gi", str(t, prodSts, mem))

	assert.NotContains(t, dev.ofType(tSecret), "rabbitmq-tls", "dev: no TLS")
	assert.Contains(t, prod.ofType(tSecret), "rabbitmq-tls", "prod: TLS")
	prodConf := confLines(t, strMap(t, prod.find(t, tConfigMap, "rabbitmq-server-conf"), "data")[confKey])
	assert.Equal(t, "none", prodConf["listeners.tcp"], "prod: TLS only")
	assert.Equal(t, "5671", prodConf["listeners.ssl.default"])
	devConf := confLines(t, strMap(t, dev.find(t, tConfigMap, "rabbitmq-server-conf"), "data")[confKey])
	assert.NotContains(t, devConf, "listeners.ssl.default")
	assert.Contains(t, dev.ofType(tNamespace), "rabbitmq-namespace")

	assert.Empty(t, dev.ofType(tNetPol), "dev: NetworkPolicy available, off")
	np := prod.find(t, tNetPol, "rabbitmq-network-policy")
	assert.Equal(t, "rabbitmq", str(t, np, "metadata.namespace"))
	assert.Equal(t, []rule{
		interNode,
		{ports: []string{"5671"}, from: []string{"any-namespace"}},
		{ports: []string{"15671"}, from: []string{"pods"}},
		{ports: []string{"15691"}, from: []string{"pods", "ns:monitoring"}},
	}, policyRules(t, np), "prod: NetworkPolicy on, TLS ports only")
	assert.Empty(t, prod.ofType(tSvcMonitor), "prod: no ServiceMonitor unless the CRD is known to be there")
	for _, m := range []*mocks{dev, prod} {
		assert.Contains(t, m.ofType(tSecret), "rabbitmq-app")
	}
}

// Rendering goes through an explicit provider that writes YAML; every
// Kubernetes object uses it, so nothing reaches a cluster.
func TestRenderProgramUsesRenderProvider(t *testing.T) {
	cfg, keys := withSecrets(nil)
	m, err := runProgram(t, NewProgram(Options{RenderDir: "/tmp/out"}), cfg, keys, false)
	require.NoError(t, err)
	p := m.find(t, "pulumi:providers:kubernetes", "render")
	assert.Equal(t, "/tmp/out", str(t, p, "renderYamlToDirectory"))
	m.mu.Lock()
	defer m.mu.Unlock()
	k8sObjects := 0
	for _, r := range m.resources {
		if strings.HasPrefix(r.TypeToken, "kubernetes:") {
			k8sObjects++
			assert.Contains(t, r.Provider, "pulumi:providers:kubernetes::render", r.Name)
		}
	}
	assert.Equal(t, 11, k8sObjects)

	// Program itself uses the ambient (default) provider.
	m, err = runProgram(t, Program, cfg, keys, false)
	require.NoError(t, err)
	assert.Empty(t, m.ofType("pulumi:providers:kubernetes"))
}

// The local lab's stack exercises the NetworkPolicy and the boot-time
// definitions on RabbitMQ 3.10 (see e2e/).
func TestLocalStack(t *testing.T) {
	cfg, keys := withSecrets(stackConfig(t, "local"))
	cfg["warren:"+KeyAppPassword] = testAppPassword
	m, err := runProgram(t, Program, cfg, append(keys, "warren:"+KeyAppPassword), true)
	require.NoError(t, err)
	assert.Contains(t, m.ofType(tNetPol), "rabbitmq-network-policy")
	assert.Contains(t, m.ofType(tSecret), "rabbitmq-definitions")
	conf := confLines(t, strMap(t, m.find(t, tConfigMap, "rabbitmq-server-conf"), "data")[confKey])
	assert.NotContains(t, conf, "default_queue_type", "3.10 would refuse it")
	assert.Equal(t, "balanced", conf["queue_leader_locator"], "3.10 knows it")
}
