package broker

import (
	"context"
	"fmt"
	"net/http"
)

// RebalanceQueues asks the cluster to spread the leaders of its quorum
// queues (and the masters of mirrored classic queues) over the running
// nodes, so that no node leads more than ⌈queues/nodes⌉ of them. It acts
// on every vhost. The broker answers at once and moves leaders in the
// background, one transfer at a time: read the queues' leaders to see it
// done (GET /api/queues?columns=leader).
//
// POST /api/rebalance/queues
func (a *API) RebalanceQueues(ctx context.Context) error {
	if err := a.do(ctx, request{method: http.MethodPost, path: "rebalance/queues", kind: kindQuick, repeatable: true}); err != nil {
		return fmt.Errorf("rebalance %s queue leaders: %w", a.ep.Name, err)
	}
	return nil
}
