package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func TestIssuedCertificateVerifiesForItsNamesOnly(t *testing.T) {
	ca, err := NewCA("test CA", []string{"warren"}, now, 24*time.Hour)
	require.NoError(t, err)
	leaf, err := ca.Issue(Request{
		CommonName: "broker", DNSNames: []string{"broker.example"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Validity: time.Hour,
	}, now)
	require.NoError(t, err)

	roots := x509.NewCertPool()
	roots.AddCert(ca.X509)
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, name := range []string{"broker.example", "127.0.0.1"} {
		opts.DNSName = name
		_, err := leaf.X509.Verify(opts)
		assert.NoError(t, err, name)
	}
	opts.DNSName = "other.example"
	_, err = leaf.X509.Verify(opts)
	assert.Error(t, err, "a name not in the SANs")

	opts.DNSName, opts.CurrentTime = "broker.example", now.Add(2*time.Hour)
	_, err = leaf.X509.Verify(opts)
	assert.Error(t, err, "after the validity")

	opts.CurrentTime, opts.KeyUsages = now, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	_, err = leaf.X509.Verify(opts)
	assert.Error(t, err, "a server certificate is not a client certificate")

	assert.True(t, ca.X509.MaxPathLenZero && ca.X509.IsCA)
	assert.False(t, leaf.X509.IsCA)
}

func TestLeafCannotIssue(t *testing.T) {
	ca, err := NewCA("test CA", nil, now, time.Hour)
	require.NoError(t, err)
	leaf, err := ca.Issue(Request{CommonName: "leaf", Validity: time.Hour}, now)
	require.NoError(t, err)
	_, err = leaf.Issue(Request{CommonName: "grandchild", Validity: time.Hour}, now)
	assert.ErrorContains(t, err, "is not a CA")
}

func TestPEMRoundTrip(t *testing.T) {
	ca, err := NewCA("test CA", nil, now, time.Hour)
	require.NoError(t, err)
	block, _ := pem.Decode(ca.KeyPEM())
	require.NotNil(t, block)
	assert.Equal(t, "PRIVATE KEY", block.Type, "PKCS#8, which Erlang's ssl reads")

	back, err := Parse(ca.CertPEM(), ca.KeyPEM())
	require.NoError(t, err)
	assert.True(t, back.X509.Equal(ca.X509))
	assert.True(t, back.Key.Equal(ca.Key))

	other, err := NewCA("other", nil, now, time.Hour)
	require.NoError(t, err)
	_, err = Parse(ca.CertPEM(), other.KeyPEM())
	assert.ErrorContains(t, err, "does not belong")

	_, err = Parse([]byte("garbage"), ca.KeyPEM())
	assert.Error(t, err)
	_, err = Parse(ca.CertPEM(), []byte("garbage"))
	assert.Error(t, err)
}

func TestParseKeyReadsSEC1(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	back, err := ParseKey(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	require.NoError(t, err)
	assert.True(t, back.Equal(key))
}

func TestWriteFiles(t *testing.T) {
	ca, err := NewCA("test CA", nil, now, time.Hour)
	require.NoError(t, err)
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	require.NoError(t, ca.WriteFiles(crt, key))
	st, err := os.Stat(key)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "a private key is readable by its owner only")
	c, _ := os.ReadFile(crt)
	k, _ := os.ReadFile(key)
	_, err = Parse(c, k)
	assert.NoError(t, err)
}
