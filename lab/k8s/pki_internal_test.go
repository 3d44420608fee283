package k8s

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/pki"
)

// Every component identity must load in Go's TLS stack (the Kubernetes
// binaries use it) and chain to the lab CA with its usage, and the service
// account key pair must match.
func TestWritePKI(t *testing.T) {
	l := &Lab{Dir: t.TempDir()}
	require.NoError(t, l.writePKI())
	caPEM, err := os.ReadFile(l.CAFile())
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))

	for _, c := range certs {
		pair, err := tls.LoadX509KeyPair(l.certFile(c.name), l.keyFile(c.name))
		require.NoError(t, err, c.name)
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		require.NoError(t, err)
		assert.Equal(t, c.cn, leaf.Subject.CommonName)
		assert.Equal(t, c.orgs, leaf.Subject.Organization, "RBAC groups of %s", c.name)
		opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{c.usage}}
		if len(c.dns) > 0 {
			opts.DNSName = c.dns[0]
		}
		_, err = leaf.Verify(opts)
		assert.NoError(t, err, c.name)
	}

	priv, err := os.ReadFile(l.pki("sa.key"))
	require.NoError(t, err)
	key, err := pki.ParseKey(priv)
	require.NoError(t, err)
	pubPEM, err := os.ReadFile(l.pki("sa.pub"))
	require.NoError(t, err)
	block, _ := pem.Decode(pubPEM)
	require.NotNil(t, block)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	require.NoError(t, err)
	assert.True(t, key.PublicKey.Equal(pub.(*ecdsa.PublicKey)), "sa.pub is sa.key's public key")
}
