package broker

import (
	"context"
	"fmt"
	"net/http"
)

// GetDefinitions decodes the whole broker's definitions (vhosts, users,
// permissions, policies, exchanges, queues, bindings, parameters) into out.
//
// GET /api/definitions
func (a *API) GetDefinitions(ctx context.Context, out any) error {
	if err := a.do(ctx, request{method: http.MethodGet, path: "definitions", out: out, kind: kindList}); err != nil {
		return fmt.Errorf("export definitions from %s: %w", a.ep.Name, err)
	}
	return nil
}

// PostDefinitions imports a definitions document. The node that handles
// the request declares the queues in it, so a quorum queue's leader lands
// on that node unless a leader locator says otherwise. It is never retried
// (see Policy): after a failure, read the target back.
//
// POST /api/definitions
func (a *API) PostDefinitions(ctx context.Context, doc any) error {
	return a.do(ctx, request{method: http.MethodPost, path: "definitions", in: doc, kind: kindBulk})
}
