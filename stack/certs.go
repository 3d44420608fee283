package stack

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/warrenmq/warren/internal/pki"
)

// Certificate lifetimes. The server certificate is re-issued by `warren
// init` when it nears its end (renewBefore), from the same CA, so clients
// that trust the CA keep working.
const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 825 * 24 * time.Hour
	renewBefore    = 30 * 24 * time.Hour
)

// CA is a certificate authority held as PEM.
type CA struct {
	CertPEM, KeyPEM string
}

// ServerCert is a server certificate and key held as PEM.
type ServerCert struct {
	CertPEM, KeyPEM string
}

// NewCA generates a self-signed CA for cluster.
func NewCA(cluster string, now time.Time) (CA, error) {
	c, err := pki.NewCA("warren "+cluster+" CA", []string{"warren"}, now, caValidity)
	if err != nil {
		return CA{}, err
	}
	return CA{CertPEM: string(c.CertPEM()), KeyPEM: string(c.KeyPEM())}, nil
}

// Issue signs a server certificate for dnsNames (the first is the common
// name) plus localhost, for port-forwarded access.
func (ca CA) Issue(dnsNames []string, now time.Time) (ServerCert, error) {
	if len(dnsNames) == 0 {
		return ServerCert{}, errors.New("issue server certificate: no DNS names")
	}
	c, err := ca.parse()
	if err != nil {
		return ServerCert{}, err
	}
	leaf, err := c.Issue(pki.Request{
		CommonName:   dnsNames[0],
		Organization: []string{"warren"},
		DNSNames:     append(slices.Clone(dnsNames), "localhost"),
		IPs:          []net.IP{net.IPv4(127, 0, 0, 1)},
		// ClientAuth too: RabbitMQ presents this certificate when it connects
		// out (shovels, federation) to peers that verify clients.
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		Validity: serverValidity,
	}, now)
	if err != nil {
		return ServerCert{}, fmt.Errorf("issue server certificate: %w", err)
	}
	return ServerCert{CertPEM: string(leaf.CertPEM()), KeyPEM: string(leaf.KeyPEM())}, nil
}

// Valid reports whether ca can still issue: it parses, its key matches and
// it outlives a new server certificate.
func (ca CA) Valid(now time.Time) bool {
	c, err := ca.parse()
	return err == nil && now.Add(serverValidity).Before(c.X509.NotAfter)
}

// Covers reports whether cert is signed by ca, matches its key, is not
// about to expire, and is valid for every name in dnsNames.
func (cert ServerCert) Covers(ca CA, dnsNames []string, now time.Time) bool {
	leaf, err := pki.Parse([]byte(cert.CertPEM), []byte(cert.KeyPEM))
	if err != nil {
		return false
	}
	root, err := pki.ParseCertificate([]byte(ca.CertPEM))
	if err != nil {
		return false
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if now.Add(renewBefore).After(leaf.X509.NotAfter) {
		return false
	}
	for _, name := range dnsNames {
		// Verify checks the chain and that name is among the SANs (wildcard
		// entries stand for themselves, so check them literally).
		if name[0] == '*' {
			if !slices.Contains(leaf.X509.DNSNames, name) {
				return false
			}
			continue
		}
		if _, err := leaf.X509.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return false
		}
	}
	return true
}

func (ca CA) parse() (*pki.Cert, error) {
	c, err := pki.Parse([]byte(ca.CertPEM), []byte(ca.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("stack CA: %w", err)
	}
	if !c.X509.IsCA {
		return nil, errors.New("stack CA: the certificate is not a CA")
	}
	return c, nil
}
