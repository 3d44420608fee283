package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
)

func TestParseEndpoint(t *testing.T) {
	ep, err := broker.ParseEndpoint("target",
		"amqp://admin:s3cret@node-0:5672/, amqp://admin:s3cret@node-1:5672/", "http://node-0:15672/api/", broker.TLSOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, ep.Nodes())
	assert.Equal(t, "http://node-0:15672", ep.API, "a trailing /api is dropped")
	assert.Equal(t, "admin", ep.APIUser, "API credentials default to the AMQP URL's")
	assert.Equal(t, "s3cret", ep.APIPassword)
	assert.NotContains(t, ep.String(), "s3cret")

	ep, err = broker.ParseEndpoint("source", "amqp://a:b@h/", "https://mgmt:pw@h:15671", broker.TLSOptions{})
	require.NoError(t, err)
	assert.Equal(t, "mgmt", ep.APIUser, "credentials in the API URL win")
	assert.Equal(t, "https://h:15671", ep.API)
}

func TestParseEndpointRejectsBadInput(t *testing.T) {
	for name, tc := range map[string]struct{ amqp, api, want string }{
		"no amqp":      {"", "http://h:15672", "no AMQP URL"},
		"bad scheme":   {"http://h:5672/", "http://h:15672", "AMQP URL"},
		"no api":       {"amqp://h/", "", "no HTTP API URL"},
		"api not http": {"amqp://h/", "amqp://h:15672", "want http"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := broker.ParseEndpoint("source", tc.amqp, tc.api, broker.TLSOptions{})
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// A password with characters that need escaping makes the URL unparseable;
// the error must not quote it (the parser's own error does).
func TestUnparseableURLNeverPrintsThePassword(t *testing.T) {
	for _, raw := range []string{
		"amqp://guest:p@ss#w%rd:s3cretPW@127.0.0.1:5700/",
		"amqp://guest:s3cretPW%zz@127.0.0.1:5700/",
	} {
		_, err := broker.ParseEndpoint("source", raw, "http://127.0.0.1:15700", broker.TLSOptions{})
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "s3cretPW", raw)
		assert.Contains(t, err.Error(), "percent-encoded")
	}
}

func TestRedactHidesPassword(t *testing.T) {
	assert.Equal(t, "amqp://u:xxxxx@h:5672/v", broker.Redact("amqp://u:pw@h:5672/v"))
}

func TestWrongCredentialsAreExplained(t *testing.T) {
	e := brokertest.New(t)
	ep := e.Source
	for i := range ep.AMQP {
		ep.AMQP[i].Password = "hunter2-pw"
	}
	ep.APIPassword = "hunter2-pw"
	_, err := ep.Dial(context.Background(), e.Vhost)
	require.ErrorContains(t, err, "check the user name and password")
	assert.NotContains(t, err.Error(), "hunter2", "the password must not appear in errors")

	api, err := ep.NewAPI()
	require.NoError(t, err)
	err = api.Get(context.Background(), "overview", new(map[string]any))
	require.ErrorContains(t, err, "login refused")
}

func TestUnreachableAndForeignAPI(t *testing.T) {
	ep, err := broker.ParseEndpoint("source", "amqp://u:p@127.0.0.1:1/", "http://127.0.0.1:1", broker.TLSOptions{})
	require.NoError(t, err)
	api, err := ep.NewAPI()
	require.NoError(t, err)
	require.ErrorContains(t, api.Get(context.Background(), "overview", new(map[string]any)), "unreachable")
	_, err = ep.Dial(context.Background(), "/")
	require.ErrorContains(t, err, "connect to source")

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<html>not rabbitmq</html>"))
	}))
	defer srv.Close()
	ep, err = broker.ParseEndpoint("source", "amqp://u:p@127.0.0.1:1/", srv.URL, broker.TLSOptions{})
	require.NoError(t, err)
	api, err = ep.NewAPI()
	require.NoError(t, err)
	err = api.Get(context.Background(), "overview", new(map[string]any))
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "is this a RabbitMQ management API"), err.Error())
}
