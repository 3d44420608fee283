package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// ExchangeInfo is an exchange as GET /api/exchanges reports it. Arguments
// stay raw so that numbers keep their JSON form.
type ExchangeInfo struct {
	Name       string          `json:"name"`
	Vhost      string          `json:"vhost"`
	Type       string          `json:"type"`
	Durable    bool            `json:"durable"`
	AutoDelete bool            `json:"auto_delete"`
	Internal   bool            `json:"internal"`
	Arguments  json.RawMessage `json:"arguments"`
	// Policy is the policy that applies to the exchange.
	Policy string `json:"policy"`
}

// ListExchanges returns the exchanges of a vhost.
//
// GET /api/exchanges/{vhost}
func (a *API) ListExchanges(ctx context.Context, vhost string) ([]ExchangeInfo, error) {
	var out []ExchangeInfo
	if err := a.do(ctx, request{method: http.MethodGet, path: path("exchanges", vhost), out: &out, kind: kindList}); err != nil {
		return nil, fmt.Errorf("list %s exchanges of vhost %s: %w", a.ep.Name, vhost, err)
	}
	return out, nil
}

// ExchangeSettings declare an exchange through the API.
type ExchangeSettings struct {
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

// PutExchange declares an exchange.
//
// PUT /api/exchanges/{vhost}/{name}
func (a *API) PutExchange(ctx context.Context, vhost, name string, s ExchangeSettings) error {
	if s.Arguments == nil {
		s.Arguments = map[string]any{}
	}
	if err := a.Do(ctx, http.MethodPut, path("exchanges", vhost, name), s, nil); err != nil {
		return fmt.Errorf("declare exchange %q in vhost %q on %s: %w", name, vhost, a.ep.Name, err)
	}
	return nil
}

// DeleteExchange deletes an exchange and its bindings; a missing exchange
// is not an error.
//
// DELETE /api/exchanges/{vhost}/{name}
func (a *API) DeleteExchange(ctx context.Context, vhost, name string) error {
	if err := a.Do(ctx, http.MethodDelete, path("exchanges", vhost, name), nil, nil); err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete exchange %q in vhost %q on %s: %w", name, vhost, a.ep.Name, err)
	}
	return nil
}
