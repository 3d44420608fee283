package shovel

import (
	"context"
	"strings"
	"sync"
	"time"
)

// producers watches, while a drain runs with live clients (AllowLive),
// which source vhosts still have client connections other than warren's
// and its shovels': the applications' producers, until they are pointed at
// the cluster. A live queue finishes only once its vhost has none left and
// the queue stayed empty for Settle, so that nothing a producer still
// publishes to the source is left behind when the shovel goes.
type producers struct {
	mu   sync.Mutex
	live map[string][]string // by vhost
}

// watchProducers polls the source's connections every interval until ctx
// ends.
func (d *drainer) watchProducers(ctx context.Context, work []workItem, every time.Duration) *producers {
	p := &producers{live: map[string][]string{}}
	vhosts := map[string]bool{}
	for _, w := range work {
		vhosts[w.vhost] = true
	}
	pollEvery(ctx, every, func() {
		for v := range vhosts {
			conns, err := d.clients(ctx, map[string]bool{v: true})
			if err != nil {
				continue // keep the last known list: better wait than leave messages behind
			}
			p.mu.Lock()
			p.live[v] = conns
			p.mu.Unlock()
		}
	})
	return p
}

// of lists the clients still attached to a source vhost.
func (p *producers) of(vhost string) []string {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live[vhost]
}

// describe names them for a log line.
func describeClients(list []string) string {
	if len(list) > 3 {
		return strings.Join(list[:3], "; ") + " and more"
	}
	return strings.Join(list, "; ")
}
