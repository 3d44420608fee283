package broker

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// GetUser returns one user; an error satisfying IsNotFound when the broker
// has none of that name.
//
// GET /api/users/{name}
func (a *API) GetUser(ctx context.Context, name string) (*User, error) {
	var u User
	if err := a.Get(ctx, path("users", name), &u); err != nil {
		return nil, fmt.Errorf("read %s user %s: %w", a.ep.Name, name, err)
	}
	return &u, nil
}

// PutUser creates a user with a password and tags, or updates it.
//
// PUT /api/users/{name}
func (a *API) PutUser(ctx context.Context, name, password string, tags []string) error {
	body := map[string]any{"password": password, "tags": strings.Join(tags, ",")}
	if err := a.Do(ctx, http.MethodPut, path("users", name), body, nil); err != nil {
		return fmt.Errorf("create user %s on %s: %w", name, a.ep.Name, err)
	}
	return nil
}

// DeleteUser deletes a user; a missing user is not an error.
//
// DELETE /api/users/{name}
func (a *API) DeleteUser(ctx context.Context, name string) error {
	if err := a.Do(ctx, http.MethodDelete, path("users", name), nil, nil); err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete user %s on %s: %w", name, a.ep.Name, err)
	}
	return nil
}

// PutUserLimit sets one of a user's limits (max-connections,
// max-channels).
//
// PUT /api/user-limits/{user}/{name}
func (a *API) PutUserLimit(ctx context.Context, user, name string, value int) error {
	if err := a.Do(ctx, http.MethodPut, path("user-limits", user, name), map[string]any{"value": value}, nil); err != nil {
		return fmt.Errorf("set limit %s of user %s on %s: %w", name, user, a.ep.Name, err)
	}
	return nil
}
