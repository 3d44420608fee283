package broker_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
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
