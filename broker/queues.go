package broker

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// QueueInfo is a queue as GET /api/queues reports it: the fields warren
// reads. Counts lag behind the broker by the statistics interval (5 s by
// default; a quorum queue's by its own metrics tick too); for a current
// depth use a passive declare (Depths).
type QueueInfo struct {
	Name       string         `json:"name"`
	Vhost      string         `json:"vhost"`
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Exclusive  bool           `json:"exclusive"`
	Arguments  map[string]any `json:"arguments"`
	// Node is a classic queue's node, and a quorum queue's leader.
	Node string `json:"node"`
	// Leader, Members and Online are a quorum queue's.
	Leader  string   `json:"leader"`
	Members []string `json:"members"`
	Online  []string `json:"online"`
	// Messages is ready + unacknowledged; nil until the queue's first
	// statistics arrive.
	Messages        *int  `json:"messages"`
	MessagesReady   int   `json:"messages_ready"`
	MessagesUnacked int   `json:"messages_unacknowledged"`
	MessageBytes    int64 `json:"message_bytes"`
	Consumers       int   `json:"consumers"`
	// Policy is the policy that applies; EffectivePolicyDefinition merges
	// it with any operator policy.
	Policy                    string         `json:"policy"`
	EffectivePolicyDefinition map[string]any `json:"effective_policy_definition"`
	MessageStats              MessageStats   `json:"message_stats"`
}

// MessageStats are a queue's cumulative message counters.
type MessageStats struct {
	Publish    int `json:"publish"`
	Ack        int `json:"ack"`
	DeliverGet int `json:"deliver_get"`
	// Redeliver counts deliveries of messages delivered before (after a
	// consumer's channel closed with them unacknowledged, for instance).
	Redeliver int `json:"redeliver"`
}

// Count is Messages, and whether the API has counted the queue yet.
func (q QueueInfo) Count() (int, bool) {
	if q.Messages == nil {
		return 0, false
	}
	return *q.Messages, true
}

// ListQueues returns the queues of vhost (every vhost when empty). columns,
// when given, limits the answer to those fields, which is much lighter on
// a broker with many queues.
//
// GET /api/queues[/{vhost}][?columns=...]
func (a *API) ListQueues(ctx context.Context, vhost string, columns ...string) ([]QueueInfo, error) {
	p := "queues"
	if vhost != "" {
		p += "/" + PathEscape(vhost)
	}
	if len(columns) > 0 {
		p += "?columns=" + strings.Join(columns, ",")
	}
	var out []QueueInfo
	if err := a.do(ctx, request{method: http.MethodGet, path: p, out: &out, kind: kindList}); err != nil {
		where := "every vhost"
		if vhost != "" {
			where = "vhost " + vhost
		}
		return nil, fmt.Errorf("list %s queues of %s: %w", a.ep.Name, where, err)
	}
	return out, nil
}

// GetQueue returns one queue; an error satisfying IsNotFound when it does
// not exist.
//
// GET /api/queues/{vhost}/{name}
func (a *API) GetQueue(ctx context.Context, vhost, name string) (*QueueInfo, error) {
	var q QueueInfo
	if err := a.Get(ctx, path("queues", vhost, name), &q); err != nil {
		return nil, fmt.Errorf("read %s queue %q in vhost %q: %w", a.ep.Name, name, vhost, err)
	}
	return &q, nil
}

// QueueSettings declare a queue through the API.
type QueueSettings struct {
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
}

// PutQueue declares a queue. The node that handles the request places it
// (for a quorum queue: its leader), unless a leader locator says otherwise.
//
// PUT /api/queues/{vhost}/{name}
func (a *API) PutQueue(ctx context.Context, vhost, name string, s QueueSettings) error {
	if s.Arguments == nil {
		s.Arguments = map[string]any{}
	}
	if err := a.Do(ctx, http.MethodPut, path("queues", vhost, name), s, nil); err != nil {
		return fmt.Errorf("declare queue %q in vhost %q on %s: %w", name, vhost, a.ep.Name, err)
	}
	return nil
}

// DeleteQueue deletes a queue; a missing queue is not an error.
//
// DELETE /api/queues/{vhost}/{name}
func (a *API) DeleteQueue(ctx context.Context, vhost, name string) error {
	if err := a.Do(ctx, http.MethodDelete, path("queues", vhost, name), nil, nil); err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete queue %q in vhost %q on %s: %w", name, vhost, a.ep.Name, err)
	}
	return nil
}
