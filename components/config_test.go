package components

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parse runs ParseConfig on short keys, all plain.
func parse(over map[string]string) (*Config, error) {
	values := map[string]string{}
	for k, v := range over {
		values["warren:"+k] = v
	}
	return ParseConfig(MapLookup(values, nil))
}

func TestDefaultsAreValid(t *testing.T) {
	c, err := parse(nil)
	require.NoError(t, err)
	assert.Equal(t, "rabbitmq", c.Name)
	assert.Equal(t, "default", c.Namespace)
	assert.Equal(t, 3, c.Replicas)
	assert.Equal(t, "preferred", c.AntiAffinity)
	assert.Equal(t, int64(2)<<30, c.MemoryLimit.Value())
	assert.Equal(t, c.MemoryLimit, c.MemoryRequest, "the memory request defaults to the limit")
	assert.Equal(t, 0.4, c.MemoryHighWatermark)
	assert.Equal(t, "quorum", c.DefaultQueueType)
	assert.False(t, c.TLSEnabled)
	for _, s := range Settings {
		assert.NotEmpty(t, s.Doc, s.Key)
	}
}

// Every bad value fails with its key, the value and what to do instead.
func TestBadSettingsFailClearly(t *testing.T) {
	for _, tc := range []struct {
		name string
		over map[string]string
		want []string
	}{
		{"zero replicas", map[string]string{"replicas": "0"}, []string{"warren:replicas", `"0"`, "at least 1"}},
		{"negative replicas", map[string]string{"replicas": "-3"}, []string{"warren:replicas", "at least 1"}},
		{"even replicas", map[string]string{"replicas": "4"}, []string{"warren:replicas", `"4"`, "use 3 or 5", "allowEvenReplicas"}},
		{"replicas not a number", map[string]string{"replicas": "three"}, []string{"warren:replicas", "whole number"}},
		{"memory too small for watermark", map[string]string{"memoryLimit": "256Mi"}, []string{"warren:memoryLimit", `"256Mi"`, "too small", "0.4", "at least 400Mi"}},
		{"memory too small for a low watermark", map[string]string{"memoryLimit": "1Gi", "memoryHighWatermark": "0.1"}, []string{"warren:memoryLimit", "0.1"}},
		{"malformed storage size", map[string]string{"storageSize": "10 GB"}, []string{"warren:storageSize", `"10 GB"`, "not a Kubernetes quantity", "10Gi"}},
		{"malformed memory", map[string]string{"memoryLimit": "lots"}, []string{"warren:memoryLimit", "not a Kubernetes quantity"}},
		{"malformed cpu", map[string]string{"cpuRequest": "1.5 cores"}, []string{"warren:cpuRequest", "not a Kubernetes quantity"}},
		{"zero storage", map[string]string{"storageSize": "0"}, []string{"warren:storageSize", "above zero"}},
		{"disk limit above storage", map[string]string{"storageSize": "1Gi", "diskFreeLimit": "2Gi"}, []string{"warren:diskFreeLimit", "storageSize"}},
		{"memory request above limit", map[string]string{"memoryRequest": "4Gi"}, []string{"warren:memoryRequest", "above warren:memoryLimit"}},
		{"cpu request above limit", map[string]string{"cpuRequest": "3"}, []string{"warren:cpuRequest", "above warren:cpuLimit"}},
		{"watermark out of range", map[string]string{"memoryHighWatermark": "40"}, []string{"warren:memoryHighWatermark", "between 0 and 1"}},
		{"anti-affinity", map[string]string{"antiAffinity": "sometimes"}, []string{"warren:antiAffinity", "preferred, required"}},
		{"pull policy", map[string]string{"imagePullPolicy": "never"}, []string{"warren:imagePullPolicy", "Never"}},
		{"service type", map[string]string{"serviceType": "Ingress"}, []string{"warren:serviceType"}},
		{"plain off without TLS", map[string]string{"disablePlainListeners": "true"}, []string{"warren:disablePlainListeners", "tlsEnabled"}},
		{"bad name", map[string]string{"name": "Rabbit_MQ"}, []string{"warren:name", "lower-case"}},
		{"long name", map[string]string{"name": strings.Repeat("r", 46)}, []string{"warren:name", "at most 45"}},
		{"bad namespace", map[string]string{"namespace": "my ns"}, []string{"warren:namespace"}},
		{"bool", map[string]string{"tlsEnabled": "yes please"}, []string{"warren:tlsEnabled", "true or false"}},
		{"root user", map[string]string{"runAsUser": "0"}, []string{"warren:runAsUser", "non-root"}},
		{"short grace", map[string]string{"terminationGracePeriodSeconds": "5"}, []string{"warren:terminationGracePeriodSeconds", "at least 30"}},
		{"queue type", map[string]string{"defaultQueueType": "mirrored"}, []string{"warren:defaultQueueType"}},
		{"plugin", map[string]string{"additionalPlugins": `["mqtt"]`}, []string{"warren:additionalPlugins", "rabbitmq_mqtt"}},
		{"command not a list", map[string]string{"command": `["unterminated`}, []string{"warren:command", "list of strings"}},
		{"amqp namespace", map[string]string{"networkPolicyAmqpNamespaces": `["Orders"]`}, []string{"warren:networkPolicyAmqpNamespaces", `"Orders"`, "namespace name"}},
		{"management namespace", map[string]string{"networkPolicyManagementNamespaces": "ops team"}, []string{"warren:networkPolicyManagementNamespaces", "namespace name"}},
		{"monitoring namespace", map[string]string{"monitoringNamespace": "kube_prom"}, []string{"warren:monitoringNamespace", "empty for none"}},
		{"network policy bool", map[string]string{"networkPolicy": "on"}, []string{"warren:networkPolicy", "true or false"}},
		{"service monitor labels", map[string]string{"serviceMonitorLabels": "release"}, []string{"warren:serviceMonitorLabels", "key=value"}},
		{"service monitor label value", map[string]string{"serviceMonitorLabels": `{"release":"kube prometheus"}`}, []string{"warren:serviceMonitorLabels", "label value"}},
		{"service monitor label key", map[string]string{"serviceMonitorLabels": `{"-bad":"x"}`}, []string{"warren:serviceMonitorLabels", "label name"}},
		{"app user is admin", map[string]string{"appUsername": "admin"}, []string{"warren:appUsername", "adminUsername"}},
		{"app user guest", map[string]string{"appUsername": "guest"}, []string{"warren:appUsername", "localhost"}},
		{"app user spaces", map[string]string{"appUsername": "my app"}, []string{"warren:appUsername", "spaces"}},
		{"app vhost empty", map[string]string{"appVhost": ""}, []string{"warren:appVhost"}},
		{"app permission regexp", map[string]string{"appUsername": "app", "appWritePermission": "^(orders"}, []string{"warren:appWritePermission", `"^(orders"`, "missing closing )", "RE2"}},
		{"app permission lookahead", map[string]string{"appReadPermission": "^(?!amq\\.).*"}, []string{"warren:appReadPermission", "lookarounds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(tc.over)
			require.Error(t, err)
			assert.Nil(t, c)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestEvenReplicasWithFlag(t *testing.T) {
	c, err := parse(map[string]string{"replicas": "4", "allowEvenReplicas": "true"})
	require.NoError(t, err)
	assert.Equal(t, 4, c.Replicas)
}

func TestAllBadSettingsReportedAtOnce(t *testing.T) {
	_, err := parse(map[string]string{"replicas": "0", "storageSize": "big", "antiAffinity": "x"})
	require.Error(t, err)
	for _, k := range []string{"warren:replicas", "warren:storageSize", "warren:antiAffinity"} {
		assert.Contains(t, err.Error(), k)
	}
}

func TestSecretsMustBeSecretAndWellFormed(t *testing.T) {
	// A password in plain text is refused without echoing it.
	_, err := ParseConfig(MapLookup(map[string]string{"warren:adminPassword": "plain-text-pw"}, nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "warren:adminPassword")
	assert.Contains(t, err.Error(), "plain text")
	assert.NotContains(t, err.Error(), "plain-text-pw")

	_, err = ParseConfig(MapLookup(map[string]string{"warren:adminPassword": "has space"}, map[string]bool{"warren:adminPassword": true}))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "has space")

	_, err = ParseConfig(MapLookup(map[string]string{"warren:erlangCookie": "short"}, map[string]bool{"warren:erlangCookie": true}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "20 to 255")
}

func TestCheckSecretsNamesTheFix(t *testing.T) {
	c, err := parse(map[string]string{"tlsEnabled": "true"})
	require.NoError(t, err)
	err = c.CheckSecrets("dev")
	require.Error(t, err)
	for _, w := range []string{"warren:erlangCookie", "warren:adminPassword", "warren:tlsCert", "warren:tlsKey", "warren:tlsCaCert", "warren init --stack dev"} {
		assert.Contains(t, err.Error(), w)
	}

	c, err = parse(map[string]string{"tlsEnabled": "true", "tlsSecretName": "mine"})
	require.NoError(t, err)
	err = c.CheckSecrets("dev")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "tlsCert", "an existing TLS Secret needs no tls* secrets")
}

// Bad settings fail the program before it registers any child: a preview
// shows the message and nothing would change.
func TestBadSettingFailsPreviewAndCreatesNothing(t *testing.T) {
	for _, over := range []map[string]string{
		{"warren:replicas": "0"},
		{"warren:replicas": "2"},
		{"warren:memoryLimit": "200Mi"},
		{"warren:storageSize": "10GB!"},
	} {
		cfg, keys := withSecrets(over)
		m, err := runProgram(t, Program, cfg, keys, true)
		require.Error(t, err, over)
		for k := range over {
			assert.Contains(t, err.Error(), k)
		}
		for _, r := range m.summary() {
			assert.True(t, strings.HasPrefix(r, "pulumi:pulumi:Stack"), "registered %s despite bad config", r)
		}
	}
}

func TestMissingSecretsFailPreview(t *testing.T) {
	_, err := runProgram(t, Program, map[string]string{}, nil, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "warren init --stack stack")
}

func TestListSettingsAcceptCommaSeparated(t *testing.T) {
	c, err := parse(map[string]string{"additionalPlugins": "rabbitmq_mqtt, rabbitmq_stomp"})
	require.NoError(t, err)
	assert.Equal(t, []string{"rabbitmq_mqtt", "rabbitmq_stomp"}, c.AdditionalPlugins)
}

func TestNetworkAndAppSettings(t *testing.T) {
	c, err := parse(map[string]string{
		"networkPolicy":                     "true",
		"networkPolicyAmqpNamespaces":       "orders, billing",
		"networkPolicyManagementNamespaces": `["ops"]`,
		"serviceMonitorLabels":              "release=kube-prometheus-stack,team=mq",
		"appUsername":                       "orders-app",
		"appVhost":                          "orders",
		"appReadPermission":                 "",
	})
	require.NoError(t, err)
	assert.True(t, c.NetworkPolicy)
	assert.Equal(t, []string{"orders", "billing"}, c.AMQPNamespaces)
	assert.Equal(t, []string{"ops"}, c.ManagementNamespaces)
	assert.Equal(t, "monitoring", c.MonitoringNamespace, "default")
	assert.False(t, c.ServiceMonitor)
	assert.Equal(t, map[string]string{"release": "kube-prometheus-stack", "team": "mq"}, c.ServiceMonitorLabels)
	assert.Equal(t, Permissions{Configure: ".*", Write: ".*", Read: ""}, c.AppPermissions, "an empty pattern denies: kept as is")

	c, err = parse(nil)
	require.NoError(t, err)
	assert.False(t, c.NetworkPolicy)
	assert.Empty(t, c.AppUsername)
	assert.Equal(t, "/", c.AppVhost)
}

func TestCheckSecretsWantsAppPassword(t *testing.T) {
	values := map[string]string{"warren:appUsername": "app", "warren:erlangCookie": "cookie-0123456789abcdefghij", "warren:adminPassword": "pw"}
	secret := map[string]bool{"warren:erlangCookie": true, "warren:adminPassword": true}
	c, err := ParseConfig(MapLookup(values, secret))
	require.NoError(t, err)
	err = c.CheckSecrets("dev")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "warren:appPassword")
	assert.Contains(t, err.Error(), "warren init --stack dev")

	values["warren:appPassword"] = "app-pw"
	_, err = ParseConfig(MapLookup(values, secret))
	require.Error(t, err, "an app password in plain text is refused")
	assert.NotContains(t, err.Error(), "app-pw")
	secret["warren:appPassword"] = true
	c, err = ParseConfig(MapLookup(values, secret))
	require.NoError(t, err)
	assert.NoError(t, c.CheckSecrets("dev"))
}
