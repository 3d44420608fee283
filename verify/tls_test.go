package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab"
)

// tlsOptions verifies the lab's target over AMQPS and HTTPS, in the test's
// vhost.
func tlsOptions(t *testing.T, e *brokertest.Env, areas ...Area) Options {
	t.Helper()
	o := options(t, e, areas...)
	o.Target = e.Lab.TargetTLSEndpoint()
	o.NodeAPIs = nil
	for _, n := range e.Lab.NodesOf(lab.Target) {
		o.NodeAPIs = append(o.NodeAPIs, fmt.Sprintf("https://localhost:%d", n.APISPort()))
	}
	return o
}

func TestTLSEndpointsPassEveryCheck(t *testing.T) {
	e := brokertest.New(t)
	requireLab(t, e)
	labTopology.declare(t, channels(t, e, e.Target), nil)
	o := tlsOptions(t, e, AreaHealth, AreaRoundTrip, AreaRouting)
	o.Source = nil
	r := run(t, o)
	require.NoError(t, r.Err())
	for _, n := range e.Lab.NodesOf(lab.Target) {
		c := find(t, r, fmt.Sprintf("amqp login localhost:%d", n.AMQPSPort()))
		assert.Contains(t, c.Detail, "TLS 1.")
		c = find(t, r, fmt.Sprintf("http login https://localhost:%d", n.APISPort()))
		assert.Contains(t, c.Detail, n.Erlang)
		assert.Contains(t, c.Detail, "TLS")
	}
	assert.Equal(t, Pass, find(t, r, "round trip "+e.Vhost).Status)
	assert.Positive(t, r.Passed)
}

func TestMutualTLSAndServerName(t *testing.T) {
	e := brokertest.New(t)
	requireLab(t, e)
	f := e.Lab.TLS()
	o := tlsOptions(t, e, AreaHealth)
	// Dial by IP address and expect the certificate's name instead.
	var urls []string
	for _, n := range e.Lab.NodesOf(lab.Target) {
		urls = append(urls, fmt.Sprintf("amqps://%s:%s@127.0.0.1:%d/", lab.TargetUser, lab.TargetPassword, n.AMQPSPort()))
	}
	var err error
	o.Target, err = broker.ParseEndpoint("target", strings.Join(urls, ","), o.Target.API,
		broker.TLSOptions{CAFile: f.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey, ServerName: "localhost"})
	require.NoError(t, err)
	r := run(t, o)
	require.NoError(t, r.Err())
	assert.Contains(t, find(t, r, fmt.Sprintf("amqp login 127.0.0.1:%d", e.Lab.NodesOf(lab.Target)[0].AMQPSPort())).Detail, "with client certificate")

	// A server name the certificate does not carry fails every login.
	o.Target.TLS.ServerName = "rabbitmq.example.com"
	r = run(t, o)
	for _, c := range r.Checks {
		if strings.Contains(c.Name, " login ") {
			assert.Equal(t, Fail, c.Status, c.Name)
			assert.Contains(t, c.Detail, "rabbitmq.example.com", c.Name)
		}
	}
}

func TestWrongCAFailsEveryTLSLogin(t *testing.T) {
	e := brokertest.New(t)
	requireLab(t, e)
	o := tlsOptions(t, e, AreaHealth, AreaRoundTrip)
	o.Target.TLS.CAFile = e.Lab.TLS().OtherCA
	r := run(t, o)
	err := r.Err()
	require.Error(t, err)
	logins := 0
	for _, c := range r.Checks {
		if strings.Contains(c.Name, " login ") {
			logins++
			assert.Equal(t, Fail, c.Status, c.Name)
			assert.Contains(t, c.Detail, "certificate signed by unknown authority", c.Name)
			assert.Contains(t, err.Error(), c.Name)
		}
	}
	assert.Equal(t, 2*lab.TargetNodes, logins, "an AMQPS and an HTTPS login per node")
	assert.Equal(t, Fail, find(t, r, "round trip "+e.Vhost).Status)

	// A CA file that is not PEM is bad input: Run refuses before any I/O.
	o.Target.TLS.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(o.Target.TLS.CAFile, []byte("not a certificate"), 0o644))
	_, err = Run(t.Context(), o)
	assert.ErrorContains(t, err, "holds no PEM certificate")
}
