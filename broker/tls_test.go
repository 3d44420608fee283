package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab"
)

func TestTLSAgainstLabTargets(t *testing.T) {
	e := brokertest.New(t)
	ctx := context.Background()
	ep := e.Lab.TargetTLSEndpoint()
	files := e.Lab.TLS()

	for i := 0; i < ep.Nodes(); i++ {
		conn, err := ep.DialNode(ctx, i, e.Vhost)
		require.NoError(t, err, "amqps to node %d", i)
		assert.True(t, conn.ConnectionState().HandshakeComplete)
		conn.Close()
	}
	api, err := ep.NewAPI()
	require.NoError(t, err)
	var who struct{ Name string }
	require.NoError(t, api.Get(ctx, "whoami", &who))
	assert.Equal(t, ep.APIUser, who.Name)

	t.Run("mutual TLS", func(t *testing.T) {
		mtls := ep
		mtls.TLS.CertFile, mtls.TLS.KeyFile = files.ClientCert, files.ClientKey
		conn, err := mtls.Dial(ctx, e.Vhost)
		require.NoError(t, err)
		assert.NotEmpty(t, conn.ConnectionState().PeerCertificates)
		conn.Close()
	})
	t.Run("wrong CA is refused", func(t *testing.T) {
		bad := ep
		bad.TLS.CAFile = files.OtherCA
		_, err := bad.Dial(ctx, e.Vhost)
		require.ErrorContains(t, err, "certificate")
		api, err := bad.NewAPI()
		require.NoError(t, err)
		require.ErrorContains(t, api.Get(ctx, "whoami", &who), "certificate")
	})
	t.Run("server name must match", func(t *testing.T) {
		bad := ep
		bad.TLS.ServerName = "rabbitmq.example.com"
		_, err := bad.Dial(ctx, e.Vhost)
		require.ErrorContains(t, err, "rabbitmq.example.com")
	})
	t.Run("half a client certificate is a usage error", func(t *testing.T) {
		bad := ep
		bad.TLS.CertFile = files.ClientCert
		_, err := bad.Dial(ctx, e.Vhost)
		require.ErrorContains(t, err, "--key-file")
	})
}

// A URL whose scheme does not match the port's protocol is refused at once
// (no retries), with a message that says which scheme the port wants.
func TestSchemeThatDoesNotMatchThePort(t *testing.T) {
	e := brokertest.New(t)
	ctx := context.Background()
	files := e.Lab.TLS()
	plain := e.Lab.NodesOf(lab.Target)[0]
	for name, tc := range map[string]struct{ amqp, api, wantAMQP, wantAPI string }{
		"TLS scheme, plain ports": {
			fmt.Sprintf("amqps://admin:admin@localhost:%d/", plain.AMQPPort), fmt.Sprintf("https://localhost:%d", plain.APIPort),
			"does not speak TLS", "must start with http://"},
		"plain scheme, TLS ports": {
			fmt.Sprintf("amqp://admin:admin@localhost:%d/", plain.AMQPSPort()), fmt.Sprintf("http://localhost:%d", plain.APISPort()),
			"must start with amqps://", "must start with https://"},
	} {
		t.Run(name, func(t *testing.T) {
			ep, err := broker.ParseEndpoint("target", tc.amqp, tc.api, broker.TLSOptions{CAFile: files.CA})
			require.NoError(t, err)
			start := time.Now()
			_, err = ep.Dial(ctx, "")
			require.ErrorContains(t, err, tc.wantAMQP)
			api, err := ep.NewAPI()
			require.NoError(t, err)
			_, err = api.Overview(ctx)
			require.ErrorContains(t, err, tc.wantAPI)
			assert.Less(t, time.Since(start), 5*time.Second, "a protocol mismatch is not retried")
		})
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		ep := e.Lab.TargetTLSEndpoint()
		ep.TLS.CAFile = files.OtherCA
		_, err := ep.Dial(ctx, "")
		require.ErrorContains(t, err, "not signed by a CA in --ca-file")
	})
}

// A valid login refused for want of a tag or permission says so, never
// "check the user name and password".
func TestStatusErrorTellsAMissingTagFromAWrongPassword(t *testing.T) {
	wrong := &broker.StatusError{Method: "GET", Path: "whoami", Status: 401, Body: `{"error":"not_authorized","reason":"Login failed"}`}
	assert.Contains(t, wrong.Error(), "check the user name and password")
	assert.False(t, wrong.LoginValid())
	noTag := &broker.StatusError{Method: "GET", Path: "parameters/shovel", Status: 401, Body: `{"error":"not_authorised","reason":"User not authorised to access object"}`}
	assert.NotContains(t, noTag.Error(), "password")
	assert.Contains(t, noTag.Error(), "lacks the tag or vhost permission")
	assert.True(t, noTag.LoginValid())
}
