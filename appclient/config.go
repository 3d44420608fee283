package appclient

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Config says how a Client reaches RabbitMQ. Only URLs is required.
type Config struct {
	// URLs are amqp:// or amqps:// URLs: one per node of a cluster, or one
	// for a Kubernetes Service. The client dials them in turn, starting with
	// the first; after a connection is lost it starts with the next one, so
	// a service moves off a node that is going away.
	URLs []string
	// TLS is used for amqps:// URLs. Nil means the system's roots and the
	// host name of each URL.
	TLS *tls.Config
	// Name labels the connection in the management UI and in
	// `rabbitmqctl list_connections` (the connection_name client property).
	// Pick one per service and role, e.g. "orders-publisher".
	Name string
	// Heartbeat is the AMQP heartbeat interval (default 10s): a dead peer
	// is noticed after about two of them.
	Heartbeat time.Duration
	// DialTimeout bounds each TCP, TLS and AMQP handshake (default 10s).
	DialTimeout time.Duration
	// Backoff paces reconnection attempts.
	Backoff Backoff
	// Logger receives connection events (default slog.Default()). The
	// package never logs a password: URLs appear as scheme://user@host:port/vhost.
	Logger *slog.Logger
}

// Default settings.
const (
	DefaultHeartbeat   = 10 * time.Second
	DefaultDialTimeout = 10 * time.Second
)

// ParseURLs splits a comma-separated list of AMQP URLs, as found in an
// environment variable such as AMQP_URLS. Empty items are ignored.
func ParseURLs(list string) []string {
	var out []string
	for _, u := range strings.Split(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// parsed holds a validated Config with defaults filled in.
type parsed struct {
	Config
	uris []amqp.URI
}

func (c Config) parse() (parsed, error) {
	p := parsed{Config: c}
	if len(c.URLs) == 0 {
		return parsed{}, errors.New("appclient: no AMQP URL given: set Config.URLs (e.g. from AMQP_URLS=amqp://user:pass@host:5672/vhost) or load a service binding with FromBinding")
	}
	for i, raw := range c.URLs {
		u, err := amqp.ParseURI(strings.TrimSpace(raw))
		if err != nil {
			// The parser's error may quote the URL, password included.
			return parsed{}, fmt.Errorf("appclient: URL %d (%s) cannot be parsed: want amqp[s]://user:password@host:port/vhost, "+
				"with any of @ : / ? # %% in the user name or password percent-encoded", i+1, redactRaw(raw))
		}
		p.uris = append(p.uris, u)
	}
	if p.Heartbeat <= 0 {
		p.Heartbeat = DefaultHeartbeat
	}
	if p.DialTimeout <= 0 {
		p.DialTimeout = DefaultDialTimeout
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if err := p.Backoff.validate(); err != nil {
		return parsed{}, err
	}
	p.Backoff = p.Backoff.withDefaults()
	return p, nil
}

// redact renders an AMQP URI for logs: scheme://user@host:port/vhost,
// without the password.
func redact(u amqp.URI) string {
	vhost := u.Vhost
	if vhost == "" {
		vhost = "/"
	}
	return fmt.Sprintf("%s://%s@%s:%d/%s", u.Scheme, u.Username, u.Host, u.Port, strings.TrimPrefix(vhost, "/"))
}

// redactRaw hides everything between "://" and the last "@" of a URL that
// could not be parsed, so a malformed URL never leaks its password.
func redactRaw(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "<not a URL>"
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "xxxxx@" + rest[at+1:]
	}
	return scheme + "://" + rest
}
