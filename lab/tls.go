package lab

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/warrenmq/warren/internal/pki"
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

// writeTLS creates the CA and certificates once; OtherCA, written last,
// marks the set complete.
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
	now, validity := time.Now(), 10*365*24*time.Hour
	ca, err := pki.NewCA("warren lab CA", []string{"warren lab"}, now, validity)
	if err != nil {
		return err
	}
	local := pki.Request{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: validity}
	srvReq, cliReq := local, local
	srvReq.CommonName, srvReq.Usages = "localhost", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	cliReq.CommonName, cliReq.Usages = "warren-client", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	srv, err := ca.Issue(srvReq, now)
	if err != nil {
		return err
	}
	cli, err := ca.Issue(cliReq, now)
	if err != nil {
		return err
	}
	other, err := pki.NewCA("some other CA", nil, now, validity)
	if err != nil {
		return err
	}
	if err := os.WriteFile(f.CA, ca.CertPEM(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", f.CA, err)
	}
	if err := srv.WriteFiles(f.ServerCert, f.ServerKey); err != nil {
		return fmt.Errorf("lab server certificate: %w", err)
	}
	if err := cli.WriteFiles(f.ClientCert, f.ClientKey); err != nil {
		return fmt.Errorf("lab client certificate: %w", err)
	}
	if err := os.WriteFile(f.OtherCA, other.CertPEM(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", f.OtherCA, err)
	}
	return nil
}
