package components

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatefulSetDefaults(t *testing.T) {
	m := deploy(t, nil)
	sts := m.find(t, tStatefulSet, "rabbitmq-server")

	assert.Equal(t, "rabbitmq-server", str(t, sts, "metadata.name"))
	assert.Equal(t, "default", str(t, sts, "metadata.namespace"))
	assert.Equal(t, 3.0, num(t, sts, "spec.replicas"))
	assert.Equal(t, "rabbitmq-nodes", str(t, sts, "spec.serviceName"), "pods get DNS names from the headless Service")
	assert.Equal(t, "Parallel", str(t, sts, "spec.podManagementPolicy"))
	assert.Equal(t, "RollingUpdate", str(t, sts, "spec.updateStrategy.type"))
	assert.Equal(t, strMap(t, sts, "spec.selector.matchLabels"), map[string]string{
		"app.kubernetes.io/name": "rabbitmq", "app.kubernetes.io/component": "rabbitmq",
	})
	tmplLabels := strMap(t, sts, "spec.template.metadata.labels")
	for k, v := range strMap(t, sts, "spec.selector.matchLabels") {
		assert.Equal(t, v, tmplLabels[k], "the template must carry the selector's labels")
	}
	assert.Len(t, strMap(t, sts, "spec.template.metadata.annotations")[configHashAnno], 64)
	assert.JSONEq(t, `["jsonpath={.status.updatedReplicas}=3","jsonpath={.status.readyReplicas}=3"]`,
		strMap(t, sts, "metadata.annotations")[waitForAnno], "Pulumi waits for the whole rollout, every replica updated and ready")

	pod := "spec.template.spec."
	assert.Equal(t, "rabbitmq-server", str(t, sts, pod+"serviceAccountName"))
	assert.Equal(t, 604800.0, num(t, sts, pod+"terminationGracePeriodSeconds"))

	c := "spec.template.spec.containers[0]."
	assert.Equal(t, "rabbitmq:3.13-management", str(t, sts, c+"image"))
	assert.Equal(t, "IfNotPresent", str(t, sts, c+"imagePullPolicy"))
	assert.False(t, has(sts, c+"command"), "the image's entrypoint starts RabbitMQ unless warren:command says otherwise")

	env := map[string]string{}
	for _, e := range items(t, sts, c+"env") {
		if v, ok := e["value"]; ok {
			env[e["name"].StringValue()] = v.StringValue()
		} else {
			env[e["name"].StringValue()] = "fieldRef:" + unsecret(e["valueFrom"]).ObjectValue()["fieldRef"].ObjectValue()["fieldPath"].StringValue()
		}
	}
	assert.Equal(t, "fieldRef:metadata.name", env["MY_POD_NAME"])
	assert.Equal(t, "fieldRef:metadata.namespace", env["MY_POD_NAMESPACE"])
	assert.Equal(t, "rabbitmq-nodes", env["K8S_SERVICE_NAME"])
	assert.Equal(t, "true", env["RABBITMQ_USE_LONGNAME"])
	assert.Equal(t, "rabbit@$(MY_POD_NAME).$(K8S_SERVICE_NAME).$(MY_POD_NAMESPACE)", env["RABBITMQ_NODENAME"])
	assert.Equal(t, confDir, env["RABBITMQ_CONFIG_FILES"])
	assert.Equal(t, "/etc/warren/plugins/enabled_plugins", env["RABBITMQ_ENABLED_PLUGINS_FILE"])
	// Kubernetes expands $(VAR) only from variables defined earlier.
	names := []string{}
	for _, e := range items(t, sts, c+"env") {
		names = append(names, e["name"].StringValue())
	}
	assert.Less(t, indexOf(names, "MY_POD_NAME"), indexOf(names, "RABBITMQ_NODENAME"))
	assert.Less(t, indexOf(names, "K8S_SERVICE_NAME"), indexOf(names, "RABBITMQ_NODENAME"))

	assert.Equal(t, 5672.0, num(t, sts, c+"readinessProbe.tcpSocket.port"), "readiness is a TCP check on AMQP")
	assert.Equal(t, []string{"rabbitmq-diagnostics", "-q", "ping"}, strs(t, sts, c+"livenessProbe.exec.command"))
	assert.Equal(t, []string{"rabbitmq-diagnostics", "-q", "check_running"}, strs(t, sts, c+"startupProbe.exec.command"),
		"a node hung while booting (rabbitmq-server#6034) must be restarted")
	assert.GreaterOrEqual(t, num(t, sts, c+"startupProbe.periodSeconds")*num(t, sts, c+"startupProbe.failureThreshold"), 300.0,
		"the startup budget outlasts the 5 minutes a node waits for its peers")
	preStop := strings.Join(strs(t, sts, c+"lifecycle.preStop.exec.command"), " ")
	assert.Contains(t, preStop, "rabbitmq-upgrade await_online_quorum_plus_one -t 604790")
	assert.Contains(t, preStop, "rabbitmq-upgrade drain")
	assert.Less(t, strings.Index(preStop, "await_online_quorum_plus_one"), strings.Index(preStop, "drain"))

	assert.Equal(t, map[string]string{"cpu": "1", "memory": "2Gi"}, strMap(t, sts, c+"resources.requests"))
	assert.Equal(t, map[string]string{"cpu": "2", "memory": "2Gi"}, strMap(t, sts, c+"resources.limits"))

	ports := map[string]float64{}
	for _, p := range items(t, sts, c+"ports") {
		ports[p["name"].StringValue()] = p["containerPort"].NumberValue()
	}
	assert.Equal(t, map[string]float64{"epmd": 4369, "clustering": 25672, "amqp": 5672, "management": 15672, "prometheus": 15692}, ports)

	// Non-root, no privilege escalation.
	assert.True(t, get(t, sts, pod+"securityContext.runAsNonRoot").BoolValue())
	assert.Equal(t, 999.0, num(t, sts, pod+"securityContext.runAsUser"))
	assert.Equal(t, 999.0, num(t, sts, pod+"securityContext.fsGroup"))
	assert.False(t, get(t, sts, c+"securityContext.allowPrivilegeEscalation").BoolValue())
	assert.Equal(t, []string{"ALL"}, strs(t, sts, c+"securityContext.capabilities.drop"))

	// Preferred anti-affinity by default, and a zone spread that never blocks.
	assert.True(t, has(sts, pod+"affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution"))
	assert.False(t, has(sts, pod+"affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"))
	assert.Equal(t, "kubernetes.io/hostname", str(t, sts, pod+"affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey"))
	assert.Equal(t, "topology.kubernetes.io/zone", str(t, sts, pod+"topologySpreadConstraints[0].topologyKey"))
	assert.Equal(t, "ScheduleAnyway", str(t, sts, pod+"topologySpreadConstraints[0].whenUnsatisfiable"))

	// The cookie reaches $HOME through the init container.
	initc := "spec.template.spec.initContainers[0]."
	assert.Contains(t, strings.Join(strs(t, sts, initc+"command"), " "), "chmod 600 /var/lib/rabbitmq/.erlang.cookie")
	assert.Equal(t, "rabbitmq-erlang-cookie", str(t, byName(t, items(t, sts, pod+"volumes"), volCookie), "secret.secretName"))

	mounts := map[string]string{}
	for _, vm := range items(t, sts, c+"volumeMounts") {
		mounts[vm["name"].StringValue()] = vm["mountPath"].StringValue()
	}
	assert.Equal(t, map[string]string{
		volHome: "/var/lib/rabbitmq", volPersistence: "/var/lib/rabbitmq/mnesia",
		volConf: confDir, volPlugins: pluginsDir,
	}, mounts)
}

// the projected conf.d volume joins the ConfigMap's rabbitmq.conf and the
// admin Secret's default_user.conf.
func TestStatefulSetProjectsConfigAndAdminUser(t *testing.T) {
	m := deploy(t, nil)
	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	conf := byName(t, items(t, sts, "spec.template.spec.volumes"), volConf)
	srcs := items(t, conf, "projected.sources")
	require.Len(t, srcs, 2)
	assert.Equal(t, "rabbitmq-server-conf", str(t, srcs[0], "configMap.name"))
	assert.Equal(t, confFileName, str(t, srcs[0], "configMap.items[0].path"))
	assert.Equal(t, "rabbitmq-default-user", str(t, srcs[1], "secret.name"))
	assert.Equal(t, adminConfKey, str(t, srcs[1], "secret.items[0].key"))
}

func TestStatefulSetPVCTemplate(t *testing.T) {
	m := deploy(t, map[string]string{"storageSize": "20Gi", "storageClass": "fast-ssd"})
	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	pvc := items(t, sts, "spec.volumeClaimTemplates")
	require.Len(t, pvc, 1)
	assert.Equal(t, volPersistence, str(t, pvc[0], "metadata.name"))
	assert.Equal(t, []string{"ReadWriteOnce"}, strs(t, pvc[0], "spec.accessModes"))
	assert.Equal(t, "20Gi", str(t, pvc[0], "spec.resources.requests.storage"))
	assert.Equal(t, "fast-ssd", str(t, pvc[0], "spec.storageClassName"))

	m = deploy(t, nil)
	pvc = items(t, m.find(t, tStatefulSet, "rabbitmq-server"), "spec.volumeClaimTemplates")
	assert.Equal(t, "10Gi", str(t, pvc[0], "spec.resources.requests.storage"))
	assert.False(t, has(pvc[0], "spec.storageClassName"), "no storageClass means the cluster's default")
}

// The settings issue 7's local lab needs: a locally loaded image that is
// never pulled, its own start command and user, a short grace period.
func TestStatefulSetLocalImageSettings(t *testing.T) {
	m := deploy(t, map[string]string{
		"image": "warren-rabbitmq:local", "imagePullPolicy": "Never",
		"command": `["/usr/sbin/rabbitmq-server"]`, "runAsUser": "101", "fsGroup": "102",
		"terminationGracePeriodSeconds": "60", "cpuLimit": "", "replicas": "1",
	})
	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	c := "spec.template.spec.containers[0]."
	assert.Equal(t, "warren-rabbitmq:local", str(t, sts, c+"image"))
	assert.Equal(t, "Never", str(t, sts, c+"imagePullPolicy"))
	assert.Equal(t, "Never", str(t, sts, "spec.template.spec.initContainers[0].imagePullPolicy"))
	assert.Equal(t, []string{"/usr/sbin/rabbitmq-server"}, strs(t, sts, c+"command"))
	assert.Equal(t, 101.0, num(t, sts, "spec.template.spec.securityContext.runAsUser"))
	assert.Equal(t, 102.0, num(t, sts, "spec.template.spec.securityContext.fsGroup"))
	assert.Equal(t, 60.0, num(t, sts, "spec.template.spec.terminationGracePeriodSeconds"))
	assert.Contains(t, strings.Join(strs(t, sts, c+"lifecycle.preStop.exec.command"), " "), "-t 50")
	assert.NotContains(t, strMap(t, sts, c+"resources.limits"), "cpu", "empty cpuLimit means no CPU limit")
	assert.Equal(t, 1.0, num(t, sts, "spec.replicas"))
}

func TestStatefulSetRequiredAntiAffinityAndTLS(t *testing.T) {
	m := deploy(t, map[string]string{"antiAffinity": "required", "tlsEnabled": "true", "disablePlainListeners": "true"})
	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	pod := "spec.template.spec."
	assert.True(t, has(sts, pod+"affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"))
	assert.False(t, has(sts, pod+"affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution"))
	assert.Equal(t, "kubernetes.io/hostname", str(t, sts, pod+"affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey"))

	c := pod + "containers[0]."
	assert.Equal(t, 5671.0, num(t, sts, c+"readinessProbe.tcpSocket.port"), "with plain listeners off, readiness checks AMQPS")
	tls := byName(t, items(t, sts, pod+"volumes"), volTLS)
	assert.Equal(t, "rabbitmq-tls", str(t, tls, "secret.secretName"))
	assert.Equal(t, tlsDir, str(t, byName(t, items(t, sts, c+"volumeMounts"), volTLS), "mountPath"))
	ports := []string{}
	for _, p := range items(t, sts, c+"ports") {
		ports = append(ports, p["name"].StringValue())
	}
	assert.ElementsMatch(t, []string{"epmd", "clustering", "amqps", "management-tls", "prometheus-tls"}, ports)
}

// The API server refuses container port names over 15 characters (IANA
// service names), whatever listeners are on.
func TestContainerPortNamesAreValid(t *testing.T) {
	for _, over := range []map[string]string{nil, {"tlsEnabled": "true"}, {"tlsEnabled": "true", "disablePlainListeners": "true"}} {
		sts := deploy(t, over).find(t, tStatefulSet, "rabbitmq-server")
		for _, p := range items(t, sts, "spec.template.spec.containers[0].ports") {
			name := p["name"].StringValue()
			assert.Regexp(t, `^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$`, name)
			assert.NotContains(t, name, "--")
		}
	}
}

func TestConfigChangeChangesPodTemplate(t *testing.T) {
	hash := func(over map[string]string) string {
		sts := deploy(t, over).find(t, tStatefulSet, "rabbitmq-server")
		return strMap(t, sts, "spec.template.metadata.annotations")[configHashAnno]
	}
	assert.Equal(t, hash(nil), hash(nil))
	assert.NotEqual(t, hash(nil), hash(map[string]string{"memoryHighWatermark": "0.5"}),
		"a rabbitmq.conf change must roll the pods")
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
