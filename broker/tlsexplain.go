package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Errors that mean the settings are wrong, not that the broker is having a
// bad moment: a URL scheme that does not match the port's protocol, a
// certificate that cannot be trusted. Nothing retries them, and messages
// say what to change.

// mismatchTLS reports whether err is a TLS client that met a server that
// does not speak TLS (an amqps:// or https:// URL pointed at a plain port).
func mismatchTLS(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) || errors.Is(err, http.ErrSchemeMismatch)
}

// certProblem explains a certificate the client could not verify, or "".
func certProblem(err error, opts TLSOptions) string {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		vfy *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &ua):
		if opts.CAFile != "" {
			return fmt.Sprintf("the server's certificate is not signed by a CA in --ca-file %s: pass the CA that signed it", opts.CAFile)
		}
		return "the server's certificate is not signed by a CA this machine trusts: pass its CA with --ca-file"
	case errors.As(err, &he):
		names := he.Certificate.DNSNames
		for _, ip := range he.Certificate.IPAddresses {
			names = append(names, ip.String())
		}
		return fmt.Sprintf("the server's certificate is for %s, not %s: use a URL host the certificate names, or --server-name", strings.Join(names, ", "), he.Host)
	case errors.As(err, &ci):
		return fmt.Sprintf("the server's certificate is not valid (%v)", ci)
	case errors.As(err, &vfy):
		return fmt.Sprintf("the server's certificate could not be verified (%v)", vfy.Err)
	}
	if strings.Contains(err.Error(), "tls: ") && strings.Contains(err.Error(), "certificate") {
		// The server refused ours: an alert such as "bad certificate" or
		// "certificate required".
		return "the server refused the client certificate (--cert-file, --key-file): it needs one signed by a CA it trusts"
	}
	return ""
}

// explainDial says what is wrong with an AMQP dial that failed for a
// reason the URL or TLS settings can fix, and otherwise returns err as the
// login's own explanation.
func (e Endpoint) explainDial(ctx context.Context, uri amqp.URI, err error) error {
	addr := net.JoinHostPort(uri.Host, fmt.Sprint(uri.Port))
	switch {
	case uri.Scheme == "amqps" && mismatchTLS(err):
		return fmt.Errorf("%w (the server at %s does not speak TLS: the amqps:// URL names a plain AMQP port; use amqp:// or the broker's TLS port, 5671 by default)", err, addr)
	case uri.Scheme == "amqps" && certProblem(err, e.TLS) != "":
		return fmt.Errorf("%w (%s)", err, certProblem(err, e.TLS))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (nothing listens at %s: check the host and port)", err, addr)
	case uri.Scheme == "amqp" && !isAMQPRefusal(err) && speaksTLS(ctx, addr, e.timeout()):
		return fmt.Errorf("%w (the server at %s speaks TLS: the URL must start with amqps://)", err, addr)
	}
	return explainAMQP(err)
}

// isAMQPRefusal reports whether the broker answered the AMQP handshake and
// refused the login or the vhost: it speaks AMQP, so the scheme is right.
func isAMQPRefusal(err error) bool {
	var aerr *amqp.Error
	return errors.Is(err, amqp.ErrVhost) || errors.Is(err, amqp.ErrCredentials) ||
		(errors.As(err, &aerr) && (aerr.Code == amqp.AccessRefused || aerr.Code == amqp.NotAllowed))
}

// speaksTLS reports whether a TLS handshake with addr gets as far as the
// server's certificate, whatever the certificate.
func speaksTLS(ctx context.Context, addr string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, min(timeout, 5*time.Second))
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // only asks whether the port speaks TLS; nothing is sent
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// misconfigured reports whether a call that got no HTTP answer failed for
// a reason only other settings fix: the URL's scheme does not match the
// port's protocol, or the server's certificate cannot be trusted.
func (e *TransportError) misconfigured() bool {
	return e.hint() != ""
}

// hint says what to change for a misconfigured call, or "".
func (e *TransportError) hint() string {
	switch {
	case mismatchTLS(e.Err):
		return "the server answers plain HTTP: the API URL must start with http://, or name the HTTPS port"
	case strings.Contains(e.Err.Error(), `malformed HTTP response "\x15\x03`):
		// A TLS alert record (0x15, version 3.x) in answer to plain HTTP.
		return "the server speaks TLS: the API URL must start with https://"
	case certProblem(e.Err, e.tls) != "":
		return certProblem(e.Err, e.tls)
	}
	return ""
}
