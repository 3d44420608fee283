package components

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSecretsComeFromConfigSecrets(t *testing.T) {
	m := deploy(t, nil)
	cookie := m.find(t, tSecret, "rabbitmq-erlang-cookie")
	assert.Equal(t, "rabbitmq-erlang-cookie", str(t, cookie, "metadata.name"))
	assert.Equal(t, "Opaque", str(t, cookie, "type"))
	assert.Equal(t, testSecrets["warren:erlangCookie"], strMap(t, cookie, "stringData")[cookieKey])
	assert.True(t, isSecret(t, cookie, "stringData", cookieKey), "the cookie must stay a Pulumi secret")

	admin := m.find(t, tSecret, "rabbitmq-default-user")
	data := strMap(t, admin, "stringData")
	assert.Equal(t, "admin", data[adminUsernameKey])
	assert.Equal(t, testSecrets["warren:adminPassword"], data[adminPasswordKey])
	assert.Equal(t, "default_user = admin\ndefault_pass = "+testSecrets["warren:adminPassword"]+"\n", data[adminConfKey])
	assert.True(t, isSecret(t, admin, "stringData", adminPasswordKey))
	assert.True(t, isSecret(t, admin, "stringData", adminConfKey))
}

func TestAdminUsernameSetting(t *testing.T) {
	data := strMap(t, deploy(t, map[string]string{"adminUsername": "ops"}).find(t, tSecret, "rabbitmq-default-user"), "stringData")
	assert.Equal(t, "ops", data[adminUsernameKey])
	assert.Contains(t, data[adminConfKey], "default_user = ops\n")
}

func TestSecretsStringHidesValues(t *testing.T) {
	s := Secrets{ErlangCookie: "cookie-value", AdminPassword: "pw-value"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		assert.NotContains(t, fmt.Sprintf(f, s), "pw-value", f)
		assert.NotContains(t, fmt.Sprintf(f, &Config{Secrets: s}), "cookie-value", f)
	}
}
