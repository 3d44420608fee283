package loadcheck

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/warrenmq/warren/appclient"
)

// ConnectionPrefix starts the connection_name of every connection a load
// check opens, as the management UI shows it.
const ConnectionPrefix = "warren.bench"

// dialTimeout bounds each client's first connection.
const dialTimeout = 30 * time.Second

// dial connects a client of the round to s. Clients start at different
// nodes of a cluster (rotate), as applications behind a Service would.
func (s side) dial(ctx context.Context, o Options, role string, rotate int) (*appclient.Client, error) {
	n := len(s.ep.AMQP)
	urls := make([]string, n)
	tlsOn := false
	for i := range n {
		j := (i + rotate) % n
		urls[i] = s.ep.URLWithVhost(j, o.Vhost)
		tlsOn = tlsOn || s.ep.AMQP[j].Scheme == "amqps"
	}
	cfg := appclient.Config{URLs: urls, Name: fmt.Sprintf("%s %s", ConnectionPrefix, role), DialTimeout: s.ep.Timeout,
		Logger: slog.New(quiet{o.Logger.Handler()}).With("side", s.name)}
	if tlsOn {
		tc, err := s.ep.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("%s TLS: %w", s.name, err)
		}
		cfg.TLS = tc
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := appclient.Dial(dctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("load check: %s %s: %w", s.name, role, err)
	}
	return c, nil
}

// quiet passes on appclient's warnings and errors, and its routine lines
// (connected, subscribed, stopped: dozens per round) only at debug level.
type quiet struct{ slog.Handler }

func (q quiet) Enabled(ctx context.Context, l slog.Level) bool {
	return q.Handler.Enabled(ctx, l) && (l >= slog.LevelWarn || q.Handler.Enabled(ctx, slog.LevelDebug))
}

func (q quiet) WithAttrs(a []slog.Attr) slog.Handler { return quiet{q.Handler.WithAttrs(a)} }
func (q quiet) WithGroup(n string) slog.Handler      { return quiet{q.Handler.WithGroup(n)} }
