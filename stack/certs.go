package stack

import (
	"crypto"
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
	"time"
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
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return CA{}, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "warren " + cluster + " CA", Organization: []string{"warren"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return CA{}, fmt.Errorf("sign CA: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return CA{}, err
	}
	return CA{CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// Issue signs a server certificate for dnsNames (the first is the common
// name) plus localhost, for port-forwarded access.
func (ca CA) Issue(dnsNames []string, now time.Time) (ServerCert, error) {
	caCert, caKey, err := ca.parse()
	if err != nil {
		return ServerCert{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return ServerCert{}, fmt.Errorf("generate server key: %w", err)
	}
	if len(dnsNames) == 0 {
		return ServerCert{}, errors.New("issue server certificate: no DNS names")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: dnsNames[0], Organization: []string{"warren"}},
		DNSNames:    append(append([]string{}, dnsNames...), "localhost"),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(serverValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		// ClientAuth too: RabbitMQ presents this certificate when it connects
		// out (shovels, federation) to peers that verify clients.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := sign(tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return ServerCert{}, fmt.Errorf("sign server certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return ServerCert{}, err
	}
	return ServerCert{CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// Valid reports whether ca can still issue: it parses, its key matches and
// it outlives a new server certificate.
func (ca CA) Valid(now time.Time) bool {
	c, _, err := ca.parse()
	return err == nil && now.Add(serverValidity).Before(c.NotAfter)
}

// Covers reports whether cert is signed by ca, matches its key, is not
// about to expire, and is valid for every name in dnsNames.
func (cert ServerCert) Covers(ca CA, dnsNames []string, now time.Time) bool {
	leaf, err := parseCert(cert.CertPEM)
	if err != nil {
		return false
	}
	key, err := parseKey(cert.KeyPEM)
	if err != nil || !key.Public().(*ecdsa.PublicKey).Equal(leaf.PublicKey) {
		return false
	}
	root, err := parseCert(ca.CertPEM)
	if err != nil {
		return false
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if now.Add(renewBefore).After(leaf.NotAfter) {
		return false
	}
	for _, name := range dnsNames {
		// Verify checks the chain and that name is among the SANs (wildcard
		// entries stand for themselves, so check them literally).
		if name[0] == '*' {
			if !contains(leaf.DNSNames, name) {
				return false
			}
			continue
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (ca CA) parse() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	c, err := parseCert(ca.CertPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	k, err := parseKey(ca.KeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	if !c.IsCA || !k.Public().(*ecdsa.PublicKey).Equal(c.PublicKey) {
		return nil, nil, errors.New("CA certificate and key do not belong together")
	}
	return c, k, nil
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
}

func encodeCert(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// encodeKey writes PKCS#8, which Erlang's ssl reads for every key type.
func encodeKey(k *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("encode key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

func parseCert(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKey(s string) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, errors.New("no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ec, nil
}
