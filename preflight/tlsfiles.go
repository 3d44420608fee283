package preflight

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
)

// TLSFiles checks the TLS files before any connection needs them: the CA
// file reads and holds certificates valid now (a warning when none is a CA:
// a pinned self-signed server certificate works too), the client
// certificate and key are given together, load, match each other and are
// valid now, and the certificate chains to the CA file (a warning when it
// does not: the server may trust another CA). usesTLS says whether any URL
// is amqps:// or https://; files given without one are a warning, since
// nothing reads them.
func TLSFiles(o broker.TLSOptions, usesTLS bool) []Finding {
	const check = "tls files"
	if o.CAFile == "" && o.CertFile == "" && o.KeyFile == "" {
		return nil
	}
	var out []Finding
	now := time.Now()
	var pool *x509.CertPool
	if o.CAFile != "" {
		f, p := caFile(o.CAFile, now)
		out = append(out, f)
		pool = p
	}
	switch {
	case (o.CertFile == "") != (o.KeyFile == ""):
		out = append(out, Failf(Usage, check, "a client certificate needs both --cert-file and --key-file (given: --cert-file %q, --key-file %q)", o.CertFile, o.KeyFile))
	case o.CertFile != "":
		out = append(out, clientCert(o, pool, now))
	}
	if !usesTLS {
		out = append(out, Warnf(check, "no URL is amqps:// or https://, so the TLS files are not used"))
	}
	return out
}

func caFile(path string, now time.Time) (Finding, *x509.CertPool) {
	const check = "tls files"
	data, err := os.ReadFile(path)
	if err != nil {
		return Failf(Usage, check, "--ca-file: %v", err), nil
	}
	certs, bad := parseCerts(data)
	if len(certs) == 0 {
		why := "no PEM certificate"
		if bad != "" {
			why = bad
		}
		return Failf(Usage, check, "--ca-file %s holds %s: give the PEM file of the CA that signed the broker's certificate", path, why), nil
	}
	pool := x509.NewCertPool()
	var usable, cas []string
	var problems []string
	for _, c := range certs {
		name := c.Subject.String()
		switch {
		case now.After(c.NotAfter):
			problems = append(problems, fmt.Sprintf("%s expired on %s", name, c.NotAfter.Format(time.DateOnly)))
			continue
		case now.Before(c.NotBefore):
			problems = append(problems, fmt.Sprintf("%s is not valid before %s", name, c.NotBefore.Format(time.DateOnly)))
			continue
		}
		pool.AddCert(c)
		usable = append(usable, name)
		if c.IsCA {
			cas = append(cas, name)
		}
	}
	switch {
	case len(usable) == 0:
		return Failf(Usage, check, "--ca-file %s holds no certificate valid now: %s", path, strings.Join(problems, "; ")), nil
	case len(cas) == 0:
		return Warnf(check, "--ca-file %s holds no CA certificate (%s): only a server presenting exactly that certificate is trusted", path, strings.Join(usable, "; ")), pool
	}
	return Passf(check, "--ca-file %s: CA %s", path, strings.Join(cas, "; ")), pool
}

// parseCerts reads every CERTIFICATE block; bad describes the first block
// that is not one, or a certificate that does not parse.
func parseCerts(data []byte) (certs []*x509.Certificate, bad string) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs, bad
		}
		if block.Type != "CERTIFICATE" {
			if bad == "" {
				bad = fmt.Sprintf("a %s block, not a certificate", block.Type)
			}
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			if bad == "" {
				bad = fmt.Sprintf("a certificate that does not parse (%v)", err)
			}
			continue
		}
		certs = append(certs, c)
	}
}

func clientCert(o broker.TLSOptions, pool *x509.CertPool, now time.Time) Finding {
	const check = "tls files"
	for _, f := range []struct{ flag, path string }{{"--cert-file", o.CertFile}, {"--key-file", o.KeyFile}} {
		if _, err := os.Stat(f.path); err != nil {
			return Failf(Usage, check, "%s: %v", f.flag, err)
		}
	}
	pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "does not match"):
			return Failf(Usage, check, "--key-file %s is not the key of --cert-file %s: give the key the certificate was issued for", o.KeyFile, o.CertFile)
		case strings.Contains(msg, "failed to find any PEM data in certificate"):
			return Failf(Usage, check, "--cert-file %s holds no PEM certificate", o.CertFile)
		case strings.Contains(msg, "failed to find") && strings.Contains(msg, "key"):
			return Failf(Usage, check, "--key-file %s holds no PEM private key", o.KeyFile)
		}
		return Failf(Usage, check, "--cert-file %s, --key-file %s do not load: %v", o.CertFile, o.KeyFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return Failf(Usage, check, "--cert-file %s does not parse: %v", o.CertFile, err)
	}
	switch {
	case now.After(leaf.NotAfter):
		return Failf(Usage, check, "the client certificate %s (--cert-file %s) expired on %s", leaf.Subject, o.CertFile, leaf.NotAfter.Format(time.DateOnly))
	case now.Before(leaf.NotBefore):
		return Failf(Usage, check, "the client certificate %s (--cert-file %s) is not valid before %s", leaf.Subject, o.CertFile, leaf.NotBefore.Format(time.DateOnly))
	}
	if pool != nil {
		inter := x509.NewCertPool()
		for _, der := range pair.Certificate[1:] {
			if c, err := x509.ParseCertificate(der); err == nil {
				inter.AddCert(c)
			}
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			return Warnf(check, "the client certificate %s (--cert-file %s) does not chain to --ca-file %s (%v): the broker must trust the CA that signed it", leaf.Subject, o.CertFile, o.CAFile, err)
		}
	}
	return Passf(check, "client certificate %s and its key (valid until %s)", leaf.Subject, leaf.NotAfter.Format(time.DateOnly))
}

// UsesTLS reports whether any of the endpoint's URLs is amqps:// or https://.
func UsesTLS(eps ...broker.Endpoint) bool {
	for _, ep := range eps {
		if strings.HasPrefix(ep.API, "https://") {
			return true
		}
		for _, u := range ep.AMQP {
			if u.Scheme == "amqps" {
				return true
			}
		}
		for _, n := range ep.NodeAPIs {
			if strings.HasPrefix(n, "https://") {
				return true
			}
		}
	}
	return false
}
