package broker

import (
	"context"
	"fmt"
	"net/http"
)

// Permissions are a user's configure, write and read patterns in a vhost.
type Permissions struct {
	User      string `json:"user,omitempty"`
	Vhost     string `json:"vhost,omitempty"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// FullPermissions allow everything in a vhost.
var FullPermissions = Permissions{Configure: ".*", Write: ".*", Read: ".*"}

// PutPermissions sets a user's permissions in a vhost.
//
// PUT /api/permissions/{vhost}/{user}
func (a *API) PutPermissions(ctx context.Context, vhost, user string, p Permissions) error {
	body := map[string]string{"configure": p.Configure, "write": p.Write, "read": p.Read}
	if err := a.Do(ctx, http.MethodPut, path("permissions", vhost, user), body, nil); err != nil {
		return fmt.Errorf("grant %s permissions in vhost %s on %s: %w", user, vhost, a.ep.Name, err)
	}
	return nil
}

// ListUserPermissions returns a user's permissions in every vhost.
//
// GET /api/users/{user}/permissions
func (a *API) ListUserPermissions(ctx context.Context, user string) ([]Permissions, error) {
	var out []Permissions
	if err := a.Get(ctx, path("users", user, "permissions"), &out); err != nil {
		return nil, fmt.Errorf("read the permissions of user %s on %s: %w", user, a.ep.Name, err)
	}
	return out, nil
}

// TopicPermissions limit what a user may publish to, and read from, a
// topic exchange by routing key.
type TopicPermissions struct {
	Exchange string `json:"exchange"`
	Write    string `json:"write"`
	Read     string `json:"read"`
}

// PutTopicPermissions sets a user's topic permissions in a vhost.
//
// PUT /api/topic-permissions/{vhost}/{user}
func (a *API) PutTopicPermissions(ctx context.Context, vhost, user string, p TopicPermissions) error {
	if err := a.Do(ctx, http.MethodPut, path("topic-permissions", vhost, user), p, nil); err != nil {
		return fmt.Errorf("grant %s topic permissions in vhost %s on %s: %w", user, vhost, a.ep.Name, err)
	}
	return nil
}

// DeletePermissions removes a user's permissions in a vhost; none is not
// an error.
//
// DELETE /api/permissions/{vhost}/{user}
func (a *API) DeletePermissions(ctx context.Context, vhost, user string) error {
	if err := a.Do(ctx, http.MethodDelete, path("permissions", vhost, user), nil, nil); err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove %s's permissions in vhost %s on %s: %w", user, vhost, a.ep.Name, err)
	}
	return nil
}

// DeleteTopicPermissions removes every topic permission of a user in a
// vhost (the API has no call for one exchange's); none is not an error.
//
// DELETE /api/topic-permissions/{vhost}/{user}
func (a *API) DeleteTopicPermissions(ctx context.Context, vhost, user string) error {
	if err := a.Do(ctx, http.MethodDelete, path("topic-permissions", vhost, user), nil, nil); err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove %s's topic permissions in vhost %s on %s: %w", user, vhost, a.ep.Name, err)
	}
	return nil
}
