package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSFiles are the PEM files of the lab's private CA. The target nodes serve
// AMQPS and HTTPS with a server certificate from it, so TLS paths are tested
// against real brokers too.
type TLSFiles struct {
	CA         string // the lab CA certificate
	ServerCert string // for localhost and 127.0.0.1
	ServerKey  string
	ClientCert string // a client certificate for mutual TLS
	ClientKey  string
	// OtherCA is a CA that signed nothing the lab serves: a wrong trust root.
	OtherCA string
}

// TLS returns where the lab keeps its certificates.
func (l *Lab) TLS() TLSFiles {
	d := filepath.Join(l.Dir, "tls")
	return TLSFiles{
		CA:         filepath.Join(d, "ca.pem"),
		ServerCert: filepath.Join(d, "server.pem"),
		ServerKey:  filepath.Join(d, "server-key.pem"),
		ClientCert: filepath.Join(d, "client.pem"),
		ClientKey:  filepath.Join(d, "client-key.pem"),
		OtherCA:    filepath.Join(d, "other-ca.pem"),
	}
}

// TLS ports are the plain ports + TLSPortOffset.
const TLSPortOffset = 50

// AMQPSPort is a target node's AMQPS port.
func (n Node) AMQPSPort() int { return n.AMQPPort + TLSPortOffset }

// APISPort is a target node's HTTPS API port.
func (n Node) APISPort() int { return n.APIPort + TLSPortOffset }

// writeTLS creates the CA and certificates once.
func (l *Lab) writeTLS() error {
	f := l.TLS()
	if _, err := os.Stat(f.OtherCA); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.CA), 0o755); err != nil {
		return err
	}
	ca, caKey, err := newCert(nil, nil, "warren lab CA", true, x509.ExtKeyUsageAny)
	if err != nil {
		return err
	}
	srv, srvKey, err := newCert(ca, caKey, "localhost", false, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	cli, cliKey, err := newCert(ca, caKey, "warren-client", false, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	other, _, err := newCert(nil, nil, "some other CA", true, x509.ExtKeyUsageAny)
	if err != nil {
		return err
	}
	for path, block := range map[string]*pem.Block{
		f.CA:         certPEM(ca),
		f.ServerCert: certPEM(srv),
		f.ServerKey:  keyPEM(srvKey),
		f.ClientCert: certPEM(cli),
		f.ClientKey:  keyPEM(cliKey),
		f.OtherCA:    certPEM(other),
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

func newCert(parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, isCA bool, usage x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"warren lab"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
		parent, parentKey = tmpl, key
	} else {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func certPEM(c *x509.Certificate) *pem.Block { return &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw} }

func keyPEM(k *ecdsa.PrivateKey) *pem.Block {
	der, _ := x509.MarshalECPrivateKey(k) // cannot fail for a P-256 key
	return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
}
