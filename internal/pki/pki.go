// Package pki issues the small private PKIs warren needs: the broker lab's
// CA and TLS certificates, the Kubernetes lab's component identities, and
// the CA and server certificate `warren init` puts into a stack's secrets.
//
// Keys are ECDSA P-256 and are encoded as PKCS#8 ("PRIVATE KEY"), the one
// form that Go, Kubernetes and Erlang's ssl (RabbitMQ) all read.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// backdate is how far NotBefore lies in the past, so a certificate is valid
// at once on a machine whose clock is slightly behind the issuer's.
const backdate = time.Hour

// Cert is a certificate with its private key.
type Cert struct {
	X509 *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Request describes a certificate to issue.
type Request struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	// Usages are the extended key usages, e.g. x509.ExtKeyUsageServerAuth.
	Usages   []x509.ExtKeyUsage
	Validity time.Duration
}

// NewCA generates a self-signed CA that may sign leaf certificates only
// (path length 0).
func NewCA(commonName string, organization []string, now time.Time, validity time.Duration) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName, Organization: organization},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	c, err := sign(tmpl, tmpl, key, key)
	if err != nil {
		return nil, fmt.Errorf("sign CA %q: %w", commonName, err)
	}
	return c, nil
}

// Issue signs a leaf certificate for r with ca.
func (ca *Cert) Issue(r Request, now time.Time) (*Cert, error) {
	if !ca.X509.IsCA {
		return nil, fmt.Errorf("issue %q: %q is not a CA", r.CommonName, ca.X509.Subject.CommonName)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key for %q: %w", r.CommonName, err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: r.CommonName, Organization: r.Organization},
		DNSNames:    r.DNSNames,
		IPAddresses: r.IPs,
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(r.Validity),
		// ECDSA keys sign; they never encipher, so no KeyEncipherment.
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: r.Usages,
	}
	c, err := sign(tmpl, ca.X509, key, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign %q: %w", r.CommonName, err)
	}
	return c, nil
}

func sign(tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) (*Cert, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{X509: parsed, Key: key}, nil
}

// CertPEM is the certificate in PEM.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.X509.Raw})
}

// KeyPEM is the private key in PEM (PKCS#8).
func (c *Cert) KeyPEM() []byte { return KeyPEM(c.Key) }

// KeyPEM encodes key as PKCS#8 PEM.
func KeyPEM(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(fmt.Sprintf("pki: marshal a P-256 key: %v", err)) // cannot happen for a valid key
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFiles writes the certificate and its key (mode 0600).
func (c *Cert) WriteFiles(certPath, keyPath string) error {
	if err := os.WriteFile(keyPath, c.KeyPEM(), 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := os.WriteFile(certPath, c.CertPEM(), 0o644); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	return nil
}

// Parse reads a certificate and its key from PEM and checks that they
// belong together.
func Parse(certPEM, keyPEM []byte) (*Cert, error) {
	crt, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(crt.PublicKey) {
		return nil, fmt.Errorf("the key does not belong to the certificate %q", crt.Subject.CommonName)
	}
	return &Cert{X509: crt, Key: key}, nil
}

// ParseCertificate reads the first PEM certificate in b.
func ParseCertificate(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// ParseKey reads an ECDSA private key in PKCS#8 or SEC 1 ("EC PRIVATE
// KEY") PEM; the latter is what earlier warren versions wrote.
func ParseKey(b []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	if block.Type == "EC PRIVATE KEY" {
		return x509.ParseECPrivateKey(block.Bytes)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T key, not ECDSA", k)
	}
	return ec, nil
}
