// Package broker describes how warren reaches a RabbitMQ deployment: AMQP
// URLs (one per node), the HTTP API, and TLS settings. Every other package
// takes an Endpoint rather than raw URLs so that credentials, TLS and
// redaction are handled in one place.
package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TLSOptions are the files and name used for amqps:// and https:// endpoints.
type TLSOptions struct {
	CAFile     string // PEM bundle of trusted CAs; the system pool when empty
	CertFile   string // client certificate for mutual TLS (optional)
	KeyFile    string // key of CertFile
	ServerName string // expected server name when it differs from the URL host
}

// Config builds a *tls.Config from the options. It never returns nil.
func (o TLSOptions) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("a client certificate needs both --cert-file and --key-file")
	}
	if o.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Endpoint is one RabbitMQ deployment as seen by warren: a single node or a
// cluster reached through several AMQP URLs and one HTTP API.
type Endpoint struct {
	// Name labels the endpoint in messages and reports ("source", "target").
	Name string
	// AMQP holds one parsed URL per node; the first is the default.
	AMQP []amqp.URI
	// API is the management API base URL, without credentials or /api.
	API string
	// NodeAPIs are the HTTP APIs of the deployment's individual nodes, when
	// known (--node-api): calls fail over to them, and work that runs on
	// the node that declares it (shovels) is declared on the right node.
	NodeAPIs []string
	// NodeAPITemplate derives a node's API URL from its name when NodeAPIs
	// are not given: {host} is the part after "@", {node} the whole name
	// (--node-api-template https://{host}:15671).
	NodeAPITemplate string
	// APIUser and APIPassword log into the HTTP API; they default to the
	// first AMQP URL's credentials.
	APIUser, APIPassword string
	// TLS applies to amqps:// and https:// URLs.
	TLS TLSOptions
	// Timeout bounds each dial and each HTTP request.
	Timeout time.Duration
}

// DefaultTimeout bounds dials and HTTP requests when Endpoint.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// ParseEndpoint builds an Endpoint from a comma-separated list of AMQP URLs
// and an HTTP API URL. Credentials in the API URL win over the AMQP ones.
func ParseEndpoint(name, amqpURLs, apiURL string, tlsOpts TLSOptions) (Endpoint, error) {
	ep := Endpoint{Name: name, TLS: tlsOpts}
	for _, raw := range strings.Split(amqpURLs, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		uri, err := amqp.ParseURI(raw)
		if err != nil {
			// The parser's error quotes the whole URL, password included:
			// never pass it on.
			return Endpoint{}, fmt.Errorf("%s AMQP URL %s cannot be parsed: want amqp[s]://user:password@host:port/vhost, "+
				"with any of @ : / ? # %% in the user name or password percent-encoded (%%40 for @, %%2F for /)", name, Redact(raw))
		}
		ep.AMQP = append(ep.AMQP, uri)
	}
	if len(ep.AMQP) == 0 {
		return Endpoint{}, fmt.Errorf("%s: no AMQP URL given: pass --%s-url amqp://user:pass@host:5672/ or set WARREN_%s_URL (for the local lab: eval \"$(warren lab env)\")",
			name, name, strings.ToUpper(name))
	}
	ep.APIUser, ep.APIPassword = ep.AMQP[0].Username, ep.AMQP[0].Password
	if apiURL == "" {
		return Endpoint{}, fmt.Errorf("%s: no HTTP API URL given: pass --%s-api http://host:15672 or set WARREN_%s_API", name, name, strings.ToUpper(name))
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Endpoint{}, fmt.Errorf("%s HTTP API URL %q: want http://host:port or https://host:port", name, Redact(apiURL))
	}
	if u.User != nil {
		ep.APIUser = u.User.Username()
		ep.APIPassword, _ = u.User.Password()
	}
	ep.API, _ = ParseAPIURL(name, apiURL)
	return ep, nil
}

// ParseAPIURL checks an HTTP API URL and returns it without credentials,
// trailing slash or /api, the form Endpoint.API and NodeAPIs hold.
func ParseAPIURL(name, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s HTTP API URL %q: want http://host:port or https://host:port", name, Redact(raw))
	}
	u.User = nil
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api")
	return u.String(), nil
}

func (e Endpoint) timeout() time.Duration {
	if e.Timeout > 0 {
		return e.Timeout
	}
	return DefaultTimeout
}

// Nodes is the number of AMQP URLs, one per node.
func (e Endpoint) Nodes() int { return len(e.AMQP) }

// Dial opens an AMQP connection to the first node, in vhost (or the URL's
// vhost when vhost is empty).
func (e Endpoint) Dial(ctx context.Context, vhost string) (*amqp.Connection, error) {
	return e.DialNode(ctx, 0, vhost)
}

// ConnectionName is the connection_name of warren's own AMQP connections,
// so that warren can tell them from the applications'.
const ConnectionName = "warren"

// DialNode opens an AMQP connection to node i (an index into AMQP).
func (e Endpoint) DialNode(ctx context.Context, i int, vhost string) (*amqp.Connection, error) {
	return e.DialNodeWith(ctx, i, vhost, nil)
}

// DialNodeWith is DialNode with extra client properties, which the HTTP
// API lists with the connection (client_properties): a way to find one's
// own connection, and so the node a URL reaches. connection_name stays
// ConnectionName, so the connection still counts as warren's.
func (e Endpoint) DialNodeWith(ctx context.Context, i int, vhost string, props amqp.Table) (*amqp.Connection, error) {
	if i < 0 || i >= len(e.AMQP) {
		return nil, fmt.Errorf("%s has %d AMQP URLs, no node %d", e.Name, len(e.AMQP), i)
	}
	uri := e.AMQP[i]
	cfg := amqp.Config{
		Vhost:      vhost,
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Properties: amqp.Table{"connection_name": ConnectionName},
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: e.timeout()}
			return d.DialContext(ctx, network, addr)
		},
	}
	for k, v := range props {
		if k != "connection_name" {
			cfg.Properties[k] = v
		}
	}
	if uri.Scheme == "amqps" {
		tc, err := e.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("%s TLS: %w", e.Name, err)
		}
		cfg.TLSClientConfig = tc
	}
	conn, err := amqp.DialConfig(uri.String(), cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s at %s: %w", e.Name, RedactURI(uri), e.explainDial(ctx, uri, err))
	}
	return conn, nil
}

func explainAMQP(err error) error {
	if errors.Is(err, amqp.ErrVhost) {
		return fmt.Errorf("%w (the vhost does not exist or the user has no access to it)", err)
	}
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.AccessRefused {
		return fmt.Errorf("%w (check the user name and password)", err)
	}
	return err
}

// Redact hides the password in a URL so it can be logged.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}

// RedactURI renders an AMQP URI without its password.
func RedactURI(u amqp.URI) string {
	if u.Password != "" {
		u.Password = "xxxxx"
	}
	return u.String()
}

// URLWithVhost renders node i's AMQP URL (with credentials) pointed at vhost.
// It is meant for shovel definitions, never for logs.
func (e Endpoint) URLWithVhost(i int, vhost string) string {
	u := e.AMQP[i]
	u.Vhost = vhost
	return u.String()
}

// String names the endpoint without secrets.
func (e Endpoint) String() string {
	hosts := make([]string, len(e.AMQP))
	for i, u := range e.AMQP {
		hosts[i] = fmt.Sprintf("%s:%d", u.Host, u.Port)
	}
	return fmt.Sprintf("%s (amqp %s, api %s)", e.Name, strings.Join(hosts, ","), e.API)
}
