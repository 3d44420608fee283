package broker

import (
	"context"
	"fmt"
	"net"
	"net/http"
)

// ConnectionInfo is a client connection as GET /api/connections reports it.
type ConnectionInfo struct {
	Name  string `json:"name"`
	User  string `json:"user"`
	Vhost string `json:"vhost"`
	Node  string `json:"node"`
	// UserProvidedName is the client's connection_name property.
	UserProvidedName string `json:"user_provided_name"`
	// ClientProperties are every property the client sent, warren's
	// own among them (see DialNodeWith).
	ClientProperties map[string]any `json:"client_properties"`
	State            string         `json:"state"`
	Channels         int            `json:"channels"`
	PeerHost         string         `json:"peer_host"`
	PeerPort         int            `json:"peer_port"`
}

// ListConnections returns the client connections to vhost (to every vhost
// when empty). The list lags by the statistics interval.
//
// GET /api/connections
// GET /api/vhosts/{vhost}/connections
func (a *API) ListConnections(ctx context.Context, vhost string) ([]ConnectionInfo, error) {
	p := "connections"
	if vhost != "" {
		p = path("vhosts", vhost, "connections")
	}
	var out []ConnectionInfo
	if err := a.do(ctx, request{method: http.MethodGet, path: p, out: &out, kind: kindList}); err != nil {
		return nil, fmt.Errorf("list %s connections: %w", a.ep.Name, err)
	}
	return out, nil
}

// CloseConnection closes a client connection, as a broker operator would;
// a connection already gone is not an error.
//
// DELETE /api/connections/{name}
func (a *API) CloseConnection(ctx context.Context, name string) error {
	if err := a.Do(ctx, http.MethodDelete, path("connections", name), nil, nil); err != nil && !IsNotFound(err) {
		return fmt.Errorf("close connection %s on %s: %w", name, a.ep.Name, err)
	}
	return nil
}

// ListTrackedConnections returns every client connection from the
// broker's connection tracking, which lists a connection as soon as it is
// open (GET /api/connections lags by the statistics interval), with its
// name, vhost, user and node only. A user without the monitoring tag sees
// only its own connections.
//
// GET /api/connections?disable_stats=true
func (a *API) ListTrackedConnections(ctx context.Context) ([]ConnectionInfo, error) {
	var out []ConnectionInfo
	if err := a.do(ctx, request{method: http.MethodGet, path: "connections?disable_stats=true", out: &out, kind: kindList}); err != nil {
		return nil, fmt.Errorf("list %s connections: %w", a.ep.Name, err)
	}
	return out, nil
}

// TrackedName is the name RabbitMQ gives a connection (as
// ListTrackedConnections lists it) between the local and remote address
// of a client socket, when the broker sees the same addresses (no NAT or
// port forward in between); "" for addresses it cannot render alike.
func TrackedName(local, remote net.Addr) string {
	l, ok1 := local.(*net.TCPAddr)
	r, ok2 := remote.(*net.TCPAddr)
	if !ok1 || !ok2 || l.IP.To4() == nil || r.IP.To4() == nil {
		return ""
	}
	return fmt.Sprintf("%s:%d -> %s:%d", l.IP.To4(), l.Port, r.IP.To4(), r.Port)
}
