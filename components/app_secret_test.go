package components

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testAppPassword = "app-Passw0rd"

// withApp turns the application user on, with its generated password.
func withApp(over map[string]string) map[string]string {
	out := map[string]string{"appUsername": "orders-app", KeyAppPassword: testAppPassword}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// deployApp is deploy with the app password stored as a secret.
func deployApp(t *testing.T, over map[string]string) *mocks {
	t.Helper()
	cfg := map[string]string{}
	for k, v := range withApp(over) {
		cfg["warren:"+k] = v
	}
	full, keys := withSecrets(cfg)
	m, err := runProgram(t, Program, full, append(keys, "warren:"+KeyAppPassword), false)
	require.NoError(t, err)
	return m
}

// Without an application user the Secret is there anyway, with the admin's
// credentials on "/", and says so.
func TestAppSecretWithAdminCredentials(t *testing.T) {
	sec := deploy(t, map[string]string{"namespace": "mq"}).find(t, tSecret, "rabbitmq-app")
	assert.Equal(t, "rabbitmq-app", str(t, sec, "metadata.name"))
	assert.Equal(t, "mq", str(t, sec, "metadata.namespace"))
	assert.Equal(t, "servicebinding.io/rabbitmq", str(t, sec, "type"))
	assert.Equal(t, "admin", strMap(t, sec, "metadata.annotations")[appCredentialAnno])
	data := strMap(t, sec, "stringData")
	pw := testSecrets["warren:adminPassword"]
	assert.Equal(t, map[string]string{
		"type":     "rabbitmq",
		"provider": "rabbitmq",
		"host":     "rabbitmq.mq.svc",
		"port":     "5672",
		"username": "admin",
		"password": pw,
		"vhost":    "/",
		"uri":      "amqp://admin:" + pw + "@rabbitmq.mq.svc:5672/%2F",
	}, data)
	assert.True(t, isSecret(t, sec, "stringData", "password"))
	assert.True(t, isSecret(t, sec, "stringData", "uri"))
}

func TestAppSecretWithAppUser(t *testing.T) {
	sec := deployApp(t, map[string]string{"appVhost": "orders/eu"}).find(t, tSecret, "rabbitmq-app")
	assert.Equal(t, "application", strMap(t, sec, "metadata.annotations")[appCredentialAnno])
	data := strMap(t, sec, "stringData")
	assert.Equal(t, "orders-app", data["username"])
	assert.Equal(t, testAppPassword, data["password"])
	assert.Equal(t, "orders/eu", data["vhost"])
	assert.Equal(t, "amqp://orders-app:"+testAppPassword+"@rabbitmq.default.svc:5672/orders%2Feu", data["uri"])
	u, err := url.Parse(data["uri"])
	require.NoError(t, err)
	assert.Equal(t, "/orders/eu", u.Path, "a client decodes the vhost back")
	assert.NotContains(t, data, "ca.crt")
}

// With TLS the Secret points at AMQPS and carries the CA to check the
// server with; with an existing TLS Secret, whose CA warren never reads, it
// carries none.
func TestAppSecretTLS(t *testing.T) {
	data := strMap(t, deploy(t, map[string]string{"tlsEnabled": "true"}).find(t, tSecret, "rabbitmq-app"), "stringData")
	assert.Equal(t, "5671", data["port"])
	assert.Regexp(t, `^amqps://admin:[^@]+@rabbitmq\.default\.svc:5671/%2F$`, data["uri"])
	assert.Equal(t, testSecrets["warren:"+KeyTLSCACert], data["ca.crt"])

	data = strMap(t, deploy(t, map[string]string{"tlsEnabled": "true", "tlsSecretName": "corp-cert"}).find(t, tSecret, "rabbitmq-app"), "stringData")
	assert.Equal(t, "5671", data["port"])
	assert.NotContains(t, data, "ca.crt")
}

func TestAppConnectionURIEscapesCredentials(t *testing.T) {
	c := appConnection{Host: "h", Port: 5672, Username: "u@x", Password: "p:w/#?", Vhost: "/"}
	u, err := url.Parse(c.URI())
	require.NoError(t, err)
	pw, _ := u.User.Password()
	assert.Equal(t, "u@x", u.User.Username())
	assert.Equal(t, "p:w/#?", pw)
	assert.Equal(t, "/%2F", u.EscapedPath())
}
