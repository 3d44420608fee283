package components

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTLSSecretFromConfig(t *testing.T) {
	m := deploy(t, map[string]string{"tlsEnabled": "true"})
	s := m.find(t, tSecret, "rabbitmq-tls")
	assert.Equal(t, "rabbitmq-tls", str(t, s, "metadata.name"))
	assert.Equal(t, "kubernetes.io/tls", str(t, s, "type"))
	data := strMap(t, s, "stringData")
	assert.Equal(t, testSecrets["warren:tlsCert"], data[tlsCertKey])
	assert.Equal(t, testSecrets["warren:tlsKey"], data[tlsKeyKey])
	assert.Equal(t, testSecrets["warren:tlsCaCert"], data[tlsCAKey])
	assert.True(t, isSecret(t, s, "stringData", tlsKeyKey), "the private key must stay a Pulumi secret")
}

func TestTLSExistingSecretIsUsedNotCreated(t *testing.T) {
	m := deploy(t, map[string]string{"tlsEnabled": "true", "tlsSecretName": "corp-cert"})
	assert.NotContains(t, m.ofType(tSecret), "rabbitmq-tls")
	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	assert.Equal(t, "corp-cert", str(t, byName(t, items(t, sts, "spec.template.spec.volumes"), volTLS), "secret.secretName"))
}

func TestNoTLSNoSecretNoMount(t *testing.T) {
	m := deploy(t, nil)
	assert.ElementsMatch(t, []string{"rabbitmq-erlang-cookie", "rabbitmq-default-user", "rabbitmq-app"}, m.ofType(tSecret))
	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	for _, v := range items(t, sts, "spec.template.spec.volumes") {
		assert.NotEqual(t, volTLS, v["name"].StringValue())
	}
}
