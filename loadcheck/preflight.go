package loadcheck

import (
	"context"
	"fmt"
	"strings"

	"github.com/warrenmq/warren/broker"
)

// side is one broker under test, checked and ready.
type side struct {
	name string
	ep   broker.Endpoint
	api  *broker.API
}

// preflight checks both brokers before anything is created on either:
// each answers with its logins (HTTP API and AMQP), the vhost exists and
// the AMQP user may use it, and the source's vhost has no other client
// unless AllowLive (which takes an API user that sees every connection).
// The connection list lags the broker by the statistics interval. Clients
// on the target's vhost are only logged: after the cutover the
// applications are there.
func preflight(ctx context.Context, o Options) ([]side, error) {
	var sides []side
	for _, s := range []struct {
		name string
		ep   broker.Endpoint
	}{{Source, o.Source}, {Target, o.Target}} {
		api, err := s.ep.NewAPI()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrPreflight, s.name, err)
		}
		me, err := api.Whoami(ctx)
		if err != nil {
			return nil, fmt.Errorf("load check: %s: %w", s.name, err)
		}
		if s.name == Source && !o.AllowLive && !me.Tags.Has("administrator") && !me.Tags.Has("monitoring") {
			return nil, fmt.Errorf("%w: the source's API user %s sees only its own connections (it needs the monitoring or administrator tag), "+
				"so warren cannot tell whether applications are attached; nothing was created. Use such a login with --source-api, "+
				"or pass --allow-live if you know none is", ErrPreflight, me.Name)
		}
		conns, err := api.ListConnections(ctx, o.Vhost)
		if broker.IsNotFound(err) {
			return nil, fmt.Errorf("%w: the %s has no vhost %q; nothing was created. Give an existing vhost with --vhost (default /)",
				ErrPreflight, s.name, o.Vhost)
		}
		if err != nil {
			return nil, fmt.Errorf("load check: %w", err)
		}
		if len(conns) > 0 {
			if err := live(o, s.name, conns); err != nil {
				return nil, err
			}
		}
		// Then an AMQP connection (after the listing, which would show it)
		// proves the AMQP login, which can differ from the API's, and its
		// access to the vhost.
		conn, err := s.ep.DialNode(ctx, 0, o.Vhost)
		if err != nil {
			return nil, fmt.Errorf("%w: %w; nothing was created. Give a vhost the user may use with --vhost (default /)", ErrPreflight, err)
		}
		_ = conn.Close()
		sides = append(sides, side{name: s.name, ep: s.ep, api: api})
	}
	return sides, nil
}

// live refuses a source with clients unless AllowLive, and logs them
// otherwise.
func live(o Options, sideName string, conns []broker.ConnectionInfo) error {
	var list []string
	for _, c := range conns {
		name := c.Name
		if c.UserProvidedName != "" {
			name += " (" + c.UserProvidedName + ")"
		}
		list = append(list, fmt.Sprintf("%s, user %s", name, c.User))
	}
	if sideName == Source && !o.AllowLive {
		return fmt.Errorf("%w: %d connection(s) in vhost %q: %s. Nothing was created. A load check would slow them down and "+
			"their traffic would skew the figures: run it when they are stopped, in a vhost of its own (--vhost), "+
			"or pass --allow-live to run anyway", ErrLiveClients, len(conns), o.Vhost, strings.Join(list, "; "))
	}
	o.Logger.Warn("clients are connected to the vhost under test: the load check slows them down and their traffic skews its figures",
		"side", sideName, "vhost", o.Vhost, "connections", len(conns))
	return nil
}
