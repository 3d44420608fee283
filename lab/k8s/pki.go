package k8s

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/warrenmq/warren/internal/pki"
)

// cert is one certificate the lab issues from its CA.
type cert struct {
	name  string // file stem in pki/
	cn    string
	orgs  []string
	usage x509.ExtKeyUsage
	dns   []string
	ips   []string
}

// certs are the lab's identities. Each component gets the user name the
// default RBAC roles are bound to (system:kube-controller-manager, ...), so
// the cluster authorizes them as a real one does. CoreDNS is a lab-only
// host process and gets an admin identity rather than its own RBAC.
var certs = []cert{
	{name: "apiserver", cn: "kube-apiserver", usage: x509.ExtKeyUsageServerAuth,
		dns: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + ClusterDomain, "localhost"},
		ips: []string{APIServiceIP, NodeIP, "127.0.0.1"}},
	{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth},
	{name: "admin", cn: "warren-admin", orgs: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth},
	{name: "controller-manager", cn: "system:kube-controller-manager", usage: x509.ExtKeyUsageClientAuth},
	{name: "scheduler", cn: "system:kube-scheduler", usage: x509.ExtKeyUsageClientAuth},
	{name: "kubelet", cn: "system:node:" + NodeName, orgs: []string{"system:nodes"}, usage: x509.ExtKeyUsageClientAuth},
	{name: "kube-proxy", cn: "system:kube-proxy", usage: x509.ExtKeyUsageClientAuth},
	{name: "coredns", cn: "warren-coredns", orgs: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth},
	{name: "kubelet-serving", cn: NodeName, usage: x509.ExtKeyUsageServerAuth, dns: []string{NodeName, "localhost"}, ips: []string{NodeIP, "127.0.0.1"}},
	// Serving certificate for the controller manager's and scheduler's
	// health ports on 127.0.0.1, so their health is checked with TLS
	// verification like everything else.
	{name: "loopback-serving", cn: "localhost", usage: x509.ExtKeyUsageServerAuth, dns: []string{"localhost"}, ips: []string{"127.0.0.1"}},
}

func (l *Lab) pki(name string) string { return l.path("pki", name) }

// CAFile is the lab CA's certificate.
func (l *Lab) CAFile() string { return l.pki("ca.pem") }

func (l *Lab) certFile(name string) string { return l.pki(name + ".pem") }
func (l *Lab) keyFile(name string) string  { return l.pki(name + "-key.pem") }

// writePKI creates the CA, the certificates and the service account key
// once; the last file written marks it complete.
func (l *Lab) writePKI() error {
	done := l.pki("sa.pub")
	if _, err := os.Stat(done); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(l.path("pki"), 0o700); err != nil {
		return err
	}
	now, validity := time.Now(), 10*365*24*time.Hour
	ca, err := pki.NewCA("warren k8s lab CA", nil, now, validity)
	if err != nil {
		return err
	}
	if err := ca.WriteFiles(l.CAFile(), l.keyFile("ca")); err != nil {
		return err
	}
	for _, c := range certs {
		req := pki.Request{CommonName: c.cn, Organization: c.orgs, DNSNames: c.dns,
			Usages: []x509.ExtKeyUsage{c.usage}, Validity: validity}
		for _, ip := range c.ips {
			req.IPs = append(req.IPs, net.ParseIP(ip))
		}
		crt, err := ca.Issue(req, now)
		if err != nil {
			return fmt.Errorf("certificate %s: %w", c.name, err)
		}
		if err := crt.WriteFiles(l.certFile(c.name), l.keyFile(c.name)); err != nil {
			return fmt.Errorf("certificate %s: %w", c.name, err)
		}
	}
	// The service account signing key pair.
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := os.WriteFile(l.pki("sa.key"), pki.KeyPEM(saKey), 0o600); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	return os.WriteFile(done, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

// kubeconfigFor renders a kubeconfig for one identity with the
// certificates embedded, so it stays valid wherever it is copied.
func (l *Lab) kubeconfigFor(identity string) (string, error) {
	ca, err := os.ReadFile(l.CAFile())
	if err != nil {
		return "", err
	}
	crt, err := os.ReadFile(l.certFile(identity))
	if err != nil {
		return "", err
	}
	key, err := os.ReadFile(l.keyFile(identity))
	if err != nil {
		return "", err
	}
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: warren-lab
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: warren-lab
  context:
    cluster: warren-lab
    user: %s
current-context: warren-lab
`, APIServer(), b64(ca), identity, b64(crt), b64(key), identity), nil
}

// kubeconfigPath is a component's kubeconfig in run/.
func (l *Lab) kubeconfigPath(identity string) string {
	if identity == "admin" {
		return l.Kubeconfig()
	}
	return l.path("run", "kubeconfig", identity+".kubeconfig")
}

func (l *Lab) writeKubeconfigs() error {
	if err := os.MkdirAll(filepath.Dir(l.kubeconfigPath("kubelet")), 0o700); err != nil {
		return err
	}
	for _, id := range []string{"admin", "controller-manager", "scheduler", "kubelet", "kube-proxy", "coredns"} {
		kc, err := l.kubeconfigFor(id)
		if err != nil {
			return fmt.Errorf("kubeconfig for %s: %w", id, err)
		}
		if err := os.WriteFile(l.kubeconfigPath(id), []byte(kc), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// tlsConfig trusts the lab CA and, when identity is set, presents that
// identity's client certificate.
func (l *Lab) tlsConfig(identity string) (*tls.Config, error) {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(l.CAFile())
	if err != nil {
		return nil, err
	}
	pool.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if identity != "" {
		pair, err := tls.LoadX509KeyPair(l.certFile(identity), l.keyFile(identity))
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
