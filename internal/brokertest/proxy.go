package brokertest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxy is a real TCP proxy in front of a real port, for fault tests:
// Shopify's toxiproxy, used as a library, so that a test can make an API
// stall, reset its connections or vanish, and heal it again, without any
// daemon to install.
type Proxy struct {
	// Addr is where clients connect instead of the upstream (host:port).
	Addr string
	p    *toxiproxy.Proxy
}

// NewProxy starts a proxy on a free loopback port in front of upstream
// (host:port) and stops it when the test ends.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port for a proxy: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	p := toxiproxy.NewProxy(server, "proxy-"+strings.ReplaceAll(addr, ":", "-"), addr, upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("start a proxy in front of %s: %v", upstream, err)
	}
	t.Cleanup(p.Stop)
	return &Proxy{Addr: addr, p: p}
}

// URL is rawURL (http://host:port/..., amqp://user:pass@host:port/...) with
// its host and port replaced by the proxy's.
func (p *Proxy) URL(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("not a URL: %v", err)
	}
	u.Host = p.Addr
	return u.String()
}

// Stall makes every connection hang: bytes are swallowed in both
// directions until Heal, and new connections are accepted but answered
// never.
func (p *Proxy) Stall(t testing.TB) {
	t.Helper()
	p.toxic(t, "stall-up", "timeout", "upstream", `{"timeout": 0}`)
	p.toxic(t, "stall-down", "timeout", "downstream", `{"timeout": 0}`)
}

// Reset makes every connection, open or new, end with a TCP reset after
// the first bytes, until Heal.
func (p *Proxy) Reset(t testing.TB) {
	t.Helper()
	p.toxic(t, "reset", "reset_peer", "downstream", `{"timeout": 0}`)
}

// Cut closes every open connection and refuses new ones until Heal: the
// network between the clients and the upstream is gone.
func (p *Proxy) Cut(t testing.TB) {
	t.Helper()
	p.p.Stop()
}

// Heal removes every fault.
func (p *Proxy) Heal(t testing.TB) {
	t.Helper()
	p.p.Toxics.ResetToxics(context.Background())
	if err := p.p.Start(); err != nil && err != toxiproxy.ErrProxyAlreadyStarted {
		t.Fatalf("restart the proxy: %v", err)
	}
}

func (p *Proxy) toxic(t testing.TB, name, kind, stream, attrs string) {
	t.Helper()
	body := fmt.Sprintf(`{"name": %q, "type": %q, "stream": %q, "toxicity": 1, "attributes": %s}`, name, kind, stream, attrs)
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		t.Fatalf("add %s toxic: %v", kind, err)
	}
}
