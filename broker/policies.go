package broker

import (
	"context"
	"fmt"
	"net/http"
)

// Policy is a policy or an operator policy.
type Policy struct {
	Name       string         `json:"name"`
	Vhost      string         `json:"vhost"`
	Pattern    string         `json:"pattern"`
	ApplyTo    string         `json:"apply-to"`
	Priority   int            `json:"priority"`
	Definition map[string]any `json:"definition"`
}

// ListPolicies returns the policies of a vhost.
//
// GET /api/policies/{vhost}
func (a *API) ListPolicies(ctx context.Context, vhost string) ([]Policy, error) {
	var out []Policy
	if err := a.Get(ctx, path("policies", vhost), &out); err != nil {
		return nil, fmt.Errorf("list %s policies of vhost %s: %w", a.ep.Name, vhost, err)
	}
	return out, nil
}

// PutPolicy creates or replaces a policy.
//
// PUT /api/policies/{vhost}/{name}
func (a *API) PutPolicy(ctx context.Context, p Policy) error {
	return a.putPolicy(ctx, "policies", p)
}

// DeletePolicy deletes a policy; a missing one is not an error.
//
// DELETE /api/policies/{vhost}/{name}
func (a *API) DeletePolicy(ctx context.Context, vhost, name string) error {
	if err := a.Do(ctx, http.MethodDelete, path("policies", vhost, name), nil, nil); err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete policy %s in vhost %s on %s: %w", name, vhost, a.ep.Name, err)
	}
	return nil
}

// ListOperatorPolicies returns the operator policies of a vhost.
//
// GET /api/operator-policies/{vhost}
func (a *API) ListOperatorPolicies(ctx context.Context, vhost string) ([]Policy, error) {
	var out []Policy
	if err := a.Get(ctx, path("operator-policies", vhost), &out); err != nil {
		return nil, fmt.Errorf("list %s operator policies of vhost %s: %w", a.ep.Name, vhost, err)
	}
	return out, nil
}

// PutOperatorPolicy creates or replaces an operator policy.
//
// PUT /api/operator-policies/{vhost}/{name}
func (a *API) PutOperatorPolicy(ctx context.Context, p Policy) error {
	return a.putPolicy(ctx, "operator-policies", p)
}

func (a *API) putPolicy(ctx context.Context, area string, p Policy) error {
	body := map[string]any{"pattern": p.Pattern, "definition": p.Definition, "priority": p.Priority}
	if p.ApplyTo != "" {
		body["apply-to"] = p.ApplyTo
	}
	if err := a.Do(ctx, http.MethodPut, path(area, p.Vhost, p.Name), body, nil); err != nil {
		return fmt.Errorf("set %s %s in vhost %s on %s: %w", area, p.Name, p.Vhost, a.ep.Name, err)
	}
	return nil
}
