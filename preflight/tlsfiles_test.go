package preflight_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/pki"
	"github.com/warrenmq/warren/preflight"
)

// tlsDir writes a CA, a client certificate it signed, an expired CA and
// client certificate, and a second key, and returns their paths.
func tlsDir(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	ca, err := pki.NewCA("test CA", nil, now, 24*time.Hour)
	require.NoError(t, err)
	client, err := ca.Issue(pki.Request{CommonName: "client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: time.Hour}, now)
	require.NoError(t, err)
	old := now.Add(-48 * time.Hour)
	oldCA, err := pki.NewCA("old CA", nil, old, 24*time.Hour)
	require.NoError(t, err)
	oldClient, err := ca.Issue(pki.Request{CommonName: "old client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: 24 * time.Hour}, old)
	require.NoError(t, err)
	other, err := pki.NewCA("other CA", nil, now, 24*time.Hour)
	require.NoError(t, err)
	p := map[string]string{}
	write := func(name string, data []byte) {
		p[name] = filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p[name], data, 0o600))
	}
	write("ca.pem", ca.CertPEM())
	write("client.pem", client.CertPEM())
	write("client-key.pem", client.KeyPEM())
	write("old-ca.pem", oldCA.CertPEM())
	write("old-client.pem", oldClient.CertPEM())
	write("old-client-key.pem", oldClient.KeyPEM())
	write("other-ca.pem", other.CertPEM())
	write("other-key.pem", other.KeyPEM())
	write("garbage.pem", []byte("not a certificate\n"))
	write("key-as-ca.pem", client.KeyPEM())
	return p
}

func TestTLSFiles(t *testing.T) {
	p := tlsDir(t)
	for _, c := range []struct {
		name    string
		opts    broker.TLSOptions
		usesTLS bool
		status  preflight.Status
		want    string
	}{
		{"CA and client certificate", broker.TLSOptions{CAFile: p["ca.pem"], CertFile: p["client.pem"], KeyFile: p["client-key.pem"]}, true, preflight.OK, "client certificate CN=client"},
		{"missing CA file", broker.TLSOptions{CAFile: p["ca.pem"] + ".nope"}, true, preflight.Fail, "no such file"},
		{"garbage CA file", broker.TLSOptions{CAFile: p["garbage.pem"]}, true, preflight.Fail, "holds no PEM certificate"},
		{"a key as the CA file", broker.TLSOptions{CAFile: p["key-as-ca.pem"]}, true, preflight.Fail, "a PRIVATE KEY block, not a certificate"},
		{"expired CA", broker.TLSOptions{CAFile: p["old-ca.pem"]}, true, preflight.Fail, "expired on"},
		{"certificate without key", broker.TLSOptions{CertFile: p["client.pem"]}, true, preflight.Fail, "needs both --cert-file and --key-file"},
		{"key of another certificate", broker.TLSOptions{CertFile: p["client.pem"], KeyFile: p["other-key.pem"]}, true, preflight.Fail, "is not the key of --cert-file"},
		{"garbage certificate", broker.TLSOptions{CertFile: p["garbage.pem"], KeyFile: p["client-key.pem"]}, true, preflight.Fail, "holds no PEM certificate"},
		{"expired client certificate", broker.TLSOptions{CertFile: p["old-client.pem"], KeyFile: p["old-client-key.pem"]}, true, preflight.Fail, "expired on"},
		{"client certificate of another CA", broker.TLSOptions{CAFile: p["other-ca.pem"], CertFile: p["client.pem"], KeyFile: p["client-key.pem"]}, true, preflight.Warn, "does not chain to --ca-file"},
		{"files but no TLS URL", broker.TLSOptions{CAFile: p["ca.pem"]}, false, preflight.Warn, "not used"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := preflight.TLSFiles(c.opts, c.usesTLS)
			require.NotEmpty(t, fs)
			worst := preflight.OK
			var details []string
			for _, f := range fs {
				details = append(details, f.Detail)
				if f.Status == preflight.Fail || (f.Status == preflight.Warn && worst == preflight.OK) {
					worst = f.Status
				}
				if f.Status == preflight.Fail {
					assert.Equal(t, preflight.Usage, f.Class)
				}
			}
			assert.Equal(t, c.status, worst, "%v", details)
			assert.Contains(t, strings.Join(details, "\n"), c.want)
		})
	}
	assert.Empty(t, preflight.TLSFiles(broker.TLSOptions{}, true), "no files, nothing to check")
}

func TestReportErrTakesTheClassToFixFirst(t *testing.T) {
	var r preflight.Report
	r.Add(preflight.Passf("a", "fine"), preflight.Warnf("b", "careful"))
	assert.NoError(t, r.Err())
	r.Add(preflight.Failf(preflight.Conflict, "plan", "2 conflicts"), preflight.Failf(preflight.Unfit, "target HTTP API", "no tag"))
	assert.Equal(t, preflight.Unfit, preflight.ClassOf(r.Err()))
	r.Add(preflight.Failf(preflight.Usage, "flags", "--parallel 0"))
	err := r.Err()
	assert.Equal(t, preflight.Usage, preflight.ClassOf(err))
	assert.ErrorIs(t, err, preflight.ErrFailed)
	for _, s := range []string{"3 check(s) failed; nothing was changed", "plan: 2 conflicts", "flags: --parallel 0", "target HTTP API: no tag"} {
		assert.Contains(t, err.Error(), s)
	}
	assert.NotContains(t, err.Error(), "careful", "warnings are not failures")
}
