package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// BindingInfo is a binding as GET /api/bindings reports it. Arguments stay
// raw so that numbers keep their JSON form: 2 and 2.0 are different header
// types to a headers exchange.
type BindingInfo struct {
	Source          string          `json:"source"`
	Vhost           string          `json:"vhost"`
	Destination     string          `json:"destination"`
	DestinationType string          `json:"destination_type"` // "queue" or "exchange"
	RoutingKey      string          `json:"routing_key"`
	Arguments       json.RawMessage `json:"arguments"`
	PropertiesKey   string          `json:"properties_key"`
}

// ListBindings returns the bindings of a vhost; an error satisfying
// IsNotFound when the vhost does not exist.
//
// GET /api/bindings/{vhost}
func (a *API) ListBindings(ctx context.Context, vhost string) ([]BindingInfo, error) {
	var out []BindingInfo
	if err := a.do(ctx, request{method: http.MethodGet, path: path("bindings", vhost), out: &out, kind: kindList}); err != nil {
		return nil, fmt.Errorf("list %s bindings of vhost %s: %w", a.ep.Name, vhost, err)
	}
	return out, nil
}

// AddBinding binds destination (a queue, or an exchange when toExchange)
// to the source exchange. Binding twice is not an error.
//
// POST /api/bindings/{vhost}/e/{source}/q/{destination}
// POST /api/bindings/{vhost}/e/{source}/e/{destination}
func (a *API) AddBinding(ctx context.Context, vhost, source, destination string, toExchange bool, key string, args map[string]any) error {
	kind := "q"
	if toExchange {
		kind = "e"
	}
	if args == nil {
		args = map[string]any{}
	}
	p := path("bindings", vhost, "e", source, kind, destination)
	// A binding is a set member: adding it again changes nothing, so the
	// POST may be retried like a PUT.
	err := a.do(ctx, request{method: http.MethodPost, path: p, in: map[string]any{"routing_key": key, "arguments": args}, kind: kindQuick, repeatable: true})
	if err != nil {
		return fmt.Errorf("bind %q to exchange %q in vhost %q on %s: %w", destination, source, vhost, a.ep.Name, err)
	}
	return nil
}

// DeleteBinding removes one binding, named by its properties key (see
// BindingInfo.PropertiesKey); a missing binding is not an error.
//
// DELETE /api/bindings/{vhost}/e/{source}/q/{destination}/{props}
// DELETE /api/bindings/{vhost}/e/{source}/e/{destination}/{props}
func (a *API) DeleteBinding(ctx context.Context, b BindingInfo) error {
	kind := "q"
	if b.DestinationType == "exchange" {
		kind = "e"
	}
	p := path("bindings", b.Vhost, "e", b.Source, kind, b.Destination, b.PropertiesKey)
	if err := a.Do(ctx, http.MethodDelete, p, nil, nil); err != nil && !IsNotFound(err) {
		return fmt.Errorf("unbind %q from exchange %q in vhost %q on %s: %w", b.Destination, b.Source, b.Vhost, a.ep.Name, err)
	}
	return nil
}
