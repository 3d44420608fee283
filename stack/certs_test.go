package stack

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/components"
	"github.com/warrenmq/warren/internal/pki"
)

func TestIssuedCertificateCoversServicesAndPods(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	names := components.NewNames("rabbitmq", "mq").DNSNames(3, "cluster.local")
	ca, err := NewCA("rabbitmq", now)
	require.NoError(t, err)
	require.True(t, ca.Valid(now))
	cert, err := ca.Issue(names, now)
	require.NoError(t, err)
	assert.True(t, cert.Covers(ca, names, now))

	leaf, err := pki.ParseCertificate([]byte(cert.CertPEM))
	require.NoError(t, err)
	root, err := pki.ParseCertificate([]byte(ca.CertPEM))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	for _, host := range []string{
		"rabbitmq.mq.svc", "rabbitmq.mq.svc.cluster.local", "rabbitmq-nodes.mq.svc.cluster.local",
		"rabbitmq-server-0.rabbitmq-nodes.mq", "rabbitmq-server-2.rabbitmq-nodes.mq.svc.cluster.local",
		// a pod added later is covered by the wildcard
		"rabbitmq-server-4.rabbitmq-nodes.mq.svc", "localhost",
	} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, CurrentTime: now})
		assert.NoError(t, err, host)
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "other.mq.svc", Roots: pool, CurrentTime: now})
	assert.Error(t, err)
}

func TestCoversRejectsWhatMustBeReissued(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	names := components.NewNames("rabbitmq", "mq").DNSNames(3, "cluster.local")
	ca, err := NewCA("rabbitmq", now)
	require.NoError(t, err)
	cert, err := ca.Issue(names, now)
	require.NoError(t, err)

	moreNames := components.NewNames("rabbitmq", "other-ns").DNSNames(3, "cluster.local")
	assert.False(t, cert.Covers(ca, moreNames, now), "names of another namespace")
	assert.False(t, cert.Covers(ca, names, now.Add(serverValidity-renewBefore/2)), "about to expire")
	other, err := NewCA("other", now)
	require.NoError(t, err)
	assert.False(t, cert.Covers(other, names, now), "signed by another CA")
	assert.False(t, ServerCert{CertPEM: cert.CertPEM, KeyPEM: ca.KeyPEM}.Covers(ca, names, now), "key does not match")
	assert.False(t, ServerCert{}.Covers(ca, names, now))
	assert.False(t, CA{}.Valid(now))
	assert.False(t, CA{CertPEM: ca.CertPEM, KeyPEM: other.KeyPEM}.Valid(now), "CA cert and key mismatch")
	assert.False(t, ca.Valid(now.Add(caValidity-serverValidity/2)), "CA would expire before a new server cert")
}
