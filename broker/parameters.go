package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Parameter is a runtime parameter: a shovel, a federation upstream, ...
type Parameter struct {
	Component string          `json:"component"`
	Vhost     string          `json:"vhost"`
	Name      string          `json:"name"`
	Value     json.RawMessage `json:"value"`
}

// ListParameters returns the runtime parameters of a component in every
// vhost; none (not an error) when the component's plugin is off.
//
// GET /api/parameters/{component}
func (a *API) ListParameters(ctx context.Context, component string) ([]Parameter, error) {
	var out []Parameter
	err := a.do(ctx, request{method: http.MethodGet, path: path("parameters", component), out: &out, kind: kindList})
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s parameters on %s: %w", component, a.ep.Name, err)
	}
	return out, nil
}

// GetParameter returns one runtime parameter; an error satisfying
// IsNotFound when there is none.
//
// GET /api/parameters/{component}/{vhost}/{name}
func (a *API) GetParameter(ctx context.Context, component, vhost, name string) (*Parameter, error) {
	var p Parameter
	if err := a.Get(ctx, path("parameters", component, vhost, name), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// PutParameter creates or replaces a runtime parameter. Replacing a
// running shovel's restarts it: see PutShovel.
//
// PUT /api/parameters/{component}/{vhost}/{name}
func (a *API) PutParameter(ctx context.Context, component, vhost, name string, value any) error {
	body := map[string]any{"component": component, "vhost": vhost, "name": name, "value": value}
	if err := a.Do(ctx, http.MethodPut, path("parameters", component, vhost, name), body, nil); err != nil {
		return fmt.Errorf("set %s parameter %s in vhost %s on %s: %w", component, name, vhost, a.ep.Name, err)
	}
	return nil
}

// DeleteParameter deletes a runtime parameter; a missing one is not an
// error.
//
// DELETE /api/parameters/{component}/{vhost}/{name}
func (a *API) DeleteParameter(ctx context.Context, component, vhost, name string) error {
	err := a.Do(ctx, http.MethodDelete, path("parameters", component, vhost, name), nil, nil)
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete %s parameter %s in vhost %s on %s: %w", component, name, vhost, a.ep.Name, err)
	}
	return nil
}

// PutVhostLimit sets one of a vhost's limits (max-connections,
// max-queues).
//
// PUT /api/vhost-limits/{vhost}/{name}
func (a *API) PutVhostLimit(ctx context.Context, vhost, name string, value int) error {
	if err := a.Do(ctx, http.MethodPut, path("vhost-limits", vhost, name), map[string]any{"value": value}, nil); err != nil {
		return fmt.Errorf("set limit %s of vhost %s on %s: %w", name, vhost, a.ep.Name, err)
	}
	return nil
}

// DeleteGlobalParameter deletes a global runtime parameter; a missing one
// is not an error.
//
// DELETE /api/global-parameters/{name}
func (a *API) DeleteGlobalParameter(ctx context.Context, name string) error {
	if err := a.Do(ctx, http.MethodDelete, path("global-parameters", name), nil, nil); err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete global parameter %s on %s: %w", name, a.ep.Name, err)
	}
	return nil
}
