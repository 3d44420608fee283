package lab

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The lab's certificates must do what the TLS tests rely on: the server
// certificate verifies for 127.0.0.1 and localhost against the lab CA and
// not against OtherCA, and the client certificate is one for mutual TLS.
func TestWriteTLS(t *testing.T) {
	t.Setenv(EnvDir, t.TempDir())
	l, err := Default()
	require.NoError(t, err)
	require.NoError(t, l.writeTLS())
	f := l.TLS()

	pool := func(path string) *x509.CertPool {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		p := x509.NewCertPool()
		require.True(t, p.AppendCertsFromPEM(b), path)
		return p
	}
	leaf := func(cert, key string) *x509.Certificate {
		pair, err := tls.LoadX509KeyPair(cert, key)
		require.NoError(t, err, "Go's TLS stack loads %s", cert)
		c, err := x509.ParseCertificate(pair.Certificate[0])
		require.NoError(t, err)
		return c
	}
	srv, cli := leaf(f.ServerCert, f.ServerKey), leaf(f.ClientCert, f.ClientKey)
	server := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, name := range []string{"127.0.0.1", "localhost"} {
		_, err := srv.Verify(x509.VerifyOptions{DNSName: name, Roots: pool(f.CA), KeyUsages: server})
		assert.NoError(t, err, name)
	}
	_, err = srv.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool(f.OtherCA), KeyUsages: server})
	assert.Error(t, err, "OtherCA must not be a trust root for the lab")
	_, err = cli.Verify(x509.VerifyOptions{Roots: pool(f.CA), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	assert.NoError(t, err)

	before, err := os.ReadFile(f.CA)
	require.NoError(t, err)
	require.NoError(t, l.writeTLS())
	after, err := os.ReadFile(f.CA)
	require.NoError(t, err)
	assert.Equal(t, before, after, "a second call keeps the CA that brokers and clients already use")
}
