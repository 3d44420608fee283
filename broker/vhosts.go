package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// ListVhosts returns the names of the broker's virtual hosts, sorted.
//
// GET /api/vhosts?columns=name
func (a *API) ListVhosts(ctx context.Context) ([]string, error) {
	var list []struct {
		Name string `json:"name"`
	}
	if err := a.Get(ctx, "vhosts?columns=name", &list); err != nil {
		return nil, fmt.Errorf("list %s vhosts: %w", a.ep.Name, err)
	}
	names := make([]string, 0, len(list))
	for _, v := range list {
		names = append(names, v.Name)
	}
	slices.Sort(names)
	return names, nil
}

// ListVhostMetadata returns every vhost with its description, tags and
// default queue type, as the API renders them (3.10 puts some only in
// "metadata"), one raw JSON object each. An entry for a vhost deleted while
// the list was built comes back as an empty list ([]), not an object.
//
// GET /api/vhosts?columns=name,description,tags,default_queue_type,metadata
func (a *API) ListVhostMetadata(ctx context.Context) ([]json.RawMessage, error) {
	var list []json.RawMessage
	err := a.do(ctx, request{method: http.MethodGet, path: "vhosts?columns=name,description,tags,default_queue_type,metadata", out: &list, kind: kindList})
	if err != nil {
		return nil, fmt.Errorf("list %s vhosts: %w", a.ep.Name, err)
	}
	return list, nil
}

// VhostInfo is a vhost as GET /api/vhosts/{name} reports it.
type VhostInfo struct {
	Name             string `json:"name"`
	Description      string `json:"description"`
	Tags             Tags   `json:"tags"`
	DefaultQueueType string `json:"default_queue_type"`
}

// GetVhost returns one vhost; an error satisfying IsNotFound when the
// broker has none of that name.
//
// GET /api/vhosts/{name}
func (a *API) GetVhost(ctx context.Context, name string) (*VhostInfo, error) {
	var v VhostInfo
	if err := a.Get(ctx, path("vhosts", name), &v); err != nil {
		return nil, fmt.Errorf("read %s vhost %s: %w", a.ep.Name, name, err)
	}
	return &v, nil
}

// VhostExists reports whether the broker has the vhost.
//
// GET /api/vhosts/{name}
func (a *API) VhostExists(ctx context.Context, name string) (bool, error) {
	var v map[string]any
	err := a.Get(ctx, path("vhosts", name), &v)
	switch {
	case err == nil:
		return true, nil
	case IsNotFound(err):
		return false, nil
	}
	return false, err
}

// VhostSettings are the optional settings of PutVhost.
type VhostSettings struct {
	Description      string   `json:"description,omitempty"`
	Tags             []string `json:"tags,omitempty"`
	DefaultQueueType string   `json:"default_queue_type,omitempty"`
}

// PutVhost creates a vhost, or updates its settings.
//
// PUT /api/vhosts/{name}
func (a *API) PutVhost(ctx context.Context, name string, s VhostSettings) error {
	body := map[string]any{}
	if s.Description != "" {
		body["description"] = s.Description
	}
	if len(s.Tags) > 0 {
		body["tags"] = strings.Join(s.Tags, ",")
	}
	if s.DefaultQueueType != "" {
		// 3.10 reads "defaultqueuetype"; later versions "default_queue_type".
		body["defaultqueuetype"], body["default_queue_type"] = s.DefaultQueueType, s.DefaultQueueType
	}
	if err := a.Do(ctx, http.MethodPut, path("vhosts", name), body, nil); err != nil {
		return fmt.Errorf("create vhost %s on %s: %w", name, a.ep.Name, err)
	}
	return nil
}

// DeleteVhost deletes a vhost and everything in it; a missing vhost is
// not an error.
//
// DELETE /api/vhosts/{name}
func (a *API) DeleteVhost(ctx context.Context, name string) error {
	if err := a.Do(ctx, http.MethodDelete, path("vhosts", name), nil, nil); err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete vhost %s on %s: %w", name, a.ep.Name, err)
	}
	return nil
}

// CheckVhosts returns an error naming each of want that the broker lacks,
// with the vhosts it has, so that a mistyped --vhost stops a command
// instead of selecting nothing and reporting success.
func (a *API) CheckVhosts(ctx context.Context, want []string) error {
	if len(want) == 0 {
		return nil
	}
	have, err := a.ListVhosts(ctx)
	if err != nil {
		return err
	}
	var missing []string
	for _, v := range want {
		if !slices.Contains(have, v) {
			missing = append(missing, fmt.Sprintf("%q", v))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	const most = 20
	shown := have
	if len(shown) > most {
		shown = shown[:most]
	}
	more := ""
	if len(have) > most {
		more = fmt.Sprintf(" and %d more", len(have)-most)
	}
	return fmt.Errorf("the %s has no vhost %s (it has: %s%s)", a.ep.Name, strings.Join(missing, ", "), strings.Join(shown, ", "), more)
}
