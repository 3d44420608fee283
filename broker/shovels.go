package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/cenkalti/backoff/v5"
)

// ShovelStatus is a shovel as GET /api/shovels reports it: where it runs
// and in which state. The list is gathered from every running node, so a
// shovel the broker lists may have no parameter any more (a stale entry a
// killed node's peer kept), and a parameter may have no shovel yet.
type ShovelStatus struct {
	Name  string `json:"name"`
	Vhost string `json:"vhost"`
	// Type is "dynamic" for a shovel declared as a parameter.
	Type string `json:"type"`
	Node string `json:"node"`
	// State is "starting", "running" or "terminated".
	State string `json:"state"`
	// Reason says why a shovel terminated or is restarting.
	Reason    string `json:"reason"`
	Timestamp string `json:"timestamp"`
}

// UnmarshalJSON takes a reason that is not a string (an Erlang term) as
// its JSON text.
func (s *ShovelStatus) UnmarshalJSON(b []byte) error {
	type plain ShovelStatus
	var raw struct {
		plain
		Reason json.RawMessage `json:"reason"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*s = ShovelStatus(raw.plain)
	if len(raw.Reason) > 0 && string(raw.Reason) != "null" {
		var str string
		if json.Unmarshal(raw.Reason, &str) == nil {
			s.Reason = str
		} else {
			s.Reason = string(raw.Reason)
		}
	}
	return nil
}

// ListShovelStatus returns the shovels that run, or ran, in vhost (every
// vhost when empty); none when the shovel management plugin is off.
//
// GET /api/shovels[/{vhost}]
func (a *API) ListShovelStatus(ctx context.Context, vhost string) ([]ShovelStatus, error) {
	p := "shovels"
	if vhost != "" {
		p += "/" + PathEscape(vhost)
	}
	var out []ShovelStatus
	err := a.do(ctx, request{method: http.MethodGet, path: p, out: &out, kind: kindList})
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("shovel status on %s: %w", a.ep.Name, err)
	}
	return out, nil
}

// ShovelComponent is the runtime parameter component of dynamic shovels.
const ShovelComponent = "shovel"

// PutShovel declares a dynamic shovel, value being its definition.
//
// The node starts the shovel before it answers, and under load (many
// shovels declared at once on a busy node) that takes many seconds, so the
// PUT has the longer List timeout.
//
// Replacing a running shovel restarts it, and a restart requeues what it
// had in flight after the destination may already hold it: a blind retry
// of a timed-out PUT can cost duplicates. So a PUT that got no answer is
// never sent again before the parameter is read back: when the broker
// holds this very value, the PUT took effect and PutShovel is done; when it
// holds none, the PUT is sent again. The whole is bounded by the policy's
// Retry.
//
// PUT /api/parameters/shovel/{vhost}/{name}
func (a *API) PutShovel(ctx context.Context, vhost, name string, value map[string]any) error {
	want, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("encode shovel %s: %w", name, err)
	}
	put := request{method: http.MethodPut, path: path("parameters", ShovelComponent, vhost, name),
		in: map[string]any{"component": ShovelComponent, "vhost": vhost, "name": name, "value": value}, kind: kindList}
	once := a.WithPolicy(a.policy.NoRetry())
	op := func() (struct{}, error) {
		err := once.do(ctx, put)
		if err == nil || !Transient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		// No answer, or a 5xx: did it take effect?
		p, gerr := once.GetParameter(ctx, ShovelComponent, vhost, name)
		switch {
		case gerr == nil && sameJSON(p.Value, want):
			return struct{}{}, nil
		case gerr != nil && !IsNotFound(gerr):
			return struct{}{}, fmt.Errorf("%w; reading it back: %v", err, gerr)
		}
		return struct{}{}, err
	}
	if a.policy.Retry <= 0 {
		_, err = op()
	} else {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.MaxInterval = a.policy.FirstBackoff, a.policy.MaxBackoff
		_, err = backoff.Retry(ctx, op, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(a.policy.Retry))
	}
	var perm *backoff.PermanentError
	if errors.As(err, &perm) {
		err = perm.Err
	}
	if err != nil {
		return fmt.Errorf("declare shovel %s in vhost %s on %s: %w", name, vhost, a.ep.Name, err)
	}
	return nil
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// DeleteShovel deletes a dynamic shovel's parameter, which stops the
// shovel; a missing one is not an error. The shovel's unacknowledged
// messages go back to its source queue once it has stopped (see
// ListShovelStatus to wait for that).
//
// DELETE /api/parameters/shovel/{vhost}/{name}
func (a *API) DeleteShovel(ctx context.Context, vhost, name string) error {
	return a.DeleteParameter(ctx, ShovelComponent, vhost, name)
}
