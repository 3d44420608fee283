package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ListVhosts returns the names of the broker's virtual hosts, sorted.
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
