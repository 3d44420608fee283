package shovel

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
)

// workItem is one queue the drain handles.
type workItem struct {
	vhost, name string
	// autoDelete: the source queue goes away with its last consumer.
	autoDelete bool
	// resume: the state holds a baseline from an earlier run.
	resume bool
	// shovel: a shovel of ours is declared for it.
	shovel bool
}

// discovery is what discover found.
type discovery struct {
	work    []workItem
	skipped []string
	// live lists the clients other than warren attached to the source:
	// consumers (also in consumers) and connections.
	live      []string
	consumers []string
	// carried are queues an earlier run drained that no verification has
	// passed yet.
	carried []QueueResult
}

// discover lists the source queues that hold messages, those an earlier
// run left unfinished (whatever the source holds now), and the clients
// other than warren attached to any queue in scope.
func (d *drainer) discover(ctx context.Context) (*discovery, error) {
	// A mistyped --vhost would select no queue and report success.
	if err := d.srcAPI.CheckVhosts(ctx, d.opts.Vhosts); err != nil {
		return nil, err
	}
	queues, err := d.srcAPI.ListQueues(ctx, "", "name", "vhost", "exclusive", "auto_delete", "messages")
	if err != nil {
		return nil, err
	}
	existing, err := List(ctx, d.fleet.api, d.opts.Side)
	if err != nil {
		return nil, err
	}
	ours := map[string]bool{}
	for _, s := range existing {
		if !s.Ghost {
			ours[stateKey(s.Vhost, strings.TrimPrefix(s.Name, NamePrefix))] = true
		}
	}
	inScope := func(vhost string) bool { return len(d.opts.Vhosts) == 0 || slices.Contains(d.opts.Vhosts, vhost) }
	found := &discovery{}
	vhosts := map[string]bool{}
	seen := map[string]bool{}
	var unsure []workItem
	for _, q := range queues {
		if !inScope(q.Vhost) {
			continue
		}
		vhosts[q.Vhost] = true
		key := stateKey(q.Vhost, q.Name)
		seen[key] = true
		if q.Exclusive {
			// Owned by one connection and gone with it: nothing to move.
			found.skipped = append(found.skipped, fmt.Sprintf("%s/%s: exclusive", q.Vhost, q.Name))
			continue
		}
		prev, inState := d.state.Get(q.Vhost, q.Name)
		item := workItem{vhost: q.Vhost, name: q.Name, autoDelete: q.AutoDelete, resume: inState && unfinished(prev), shovel: ours[key]}
		// The HTTP counts lag; a passive declare is exact.
		ready, consumers, err := d.counts.src.Depth(ctx, q.Vhost, q.Name)
		if err != nil {
			return nil, err
		}
		if ours[key] && consumers > 0 {
			consumers-- // our own shovel
		}
		if consumers > 0 {
			c := fmt.Sprintf("%d consumer(s) on queue %s in vhost %s", consumers, q.Name, q.Vhost)
			found.live = append(found.live, c)
			found.consumers = append(found.consumers, c)
		}
		counted, _ := q.Count()
		switch {
		case item.resume || ours[key] || ready > 0:
			found.work = append(found.work, item)
		case counted > 0:
			// Passive says empty, HTTP says not: unacked messages (then a
			// consumer shows up as live above), a lagging count, or a
			// quorum queue's spurious zero. Settled below.
			unsure = append(unsure, item)
		case inState && prev.Status == StatusDrained && !prev.Verified && d.opts.Unverified:
			prev.Carried, prev.MovedThisRun = true, 0
			found.carried = append(found.carried, prev)
		}
	}
	// A queue of an earlier run that the source no longer has (an
	// auto-delete queue the drain emptied) is reported if not verified.
	for _, r := range d.state.All() {
		if d.opts.Unverified && inScope(r.Vhost) && !seen[stateKey(r.Vhost, r.Queue)] && r.Status == StatusDrained && !r.Verified {
			r.Carried, r.MovedThisRun = true, 0
			found.carried = append(found.carried, r)
		}
	}
	settled, err := d.settle(ctx, unsure)
	if err != nil {
		return nil, err
	}
	found.work = append(found.work, settled...)
	conns, err := d.clients(ctx, vhosts)
	if err != nil {
		return nil, err
	}
	found.live = append(found.live, conns...)
	sort.Strings(found.live)
	sort.Slice(found.work, func(i, j int) bool {
		if found.work[i].vhost != found.work[j].vhost {
			return found.work[i].vhost < found.work[j].vhost
		}
		return found.work[i].name < found.work[j].name
	})
	return found, nil
}

// settle decides queues whose passive count (0) and HTTP count (> 0)
// disagree: it reads both again until one of them moves — a ready message
// makes it work, an HTTP zero makes it empty — for up to settleWait, longer
// than the 5s metrics tick of quorum queues. Still unsure, it drains: an
// empty drain costs a second, a skipped message costs the migration.
func (d *drainer) settle(ctx context.Context, unsure []workItem) ([]workItem, error) {
	var work []workItem
	deadline := time.Now().Add(settleWait)
	for len(unsure) > 0 && time.Now().Before(deadline) {
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
		var still []workItem
		for _, w := range unsure {
			ready, err := d.counts.sourceReady(ctx, w.vhost, w.name)
			if err != nil {
				return nil, err
			}
			total, err := d.counts.sourceTotal(ctx, w.vhost, w.name)
			if err != nil {
				return nil, err
			}
			switch {
			case ready > 0:
				work = append(work, w)
			case total != 0:
				still = append(still, w)
			}
		}
		unsure = still
	}
	return append(work, unsure...), nil
}

// settleWait bounds settle.
const settleWait = 7 * time.Second

// clients lists connections to the source vhosts other than warren's own
// and its shovels'. The list lags by the stats interval; the consumer
// counts from passive declares in discover do not.
func (d *drainer) clients(ctx context.Context, vhosts map[string]bool) ([]string, error) {
	var live []string
	for v := range vhosts {
		conns, err := d.srcAPI.ListConnections(ctx, v)
		if err != nil {
			return nil, err
		}
		for _, c := range conns {
			if c.UserProvidedName == broker.ConnectionName || strings.HasPrefix(c.UserProvidedName, "Shovel "+NamePrefix) {
				continue
			}
			live = append(live, fmt.Sprintf("connection %s (user %s) in vhost %s", c.Name, c.User, v))
		}
	}
	return live, nil
}

// checkLive refuses to go on while other clients are attached to the
// source, unless AllowLive: a producer would keep filling queues after
// they were judged empty, a consumer would take messages the target
// never sees.
func (d *drainer) checkLive(live []string) error {
	if len(live) == 0 {
		return nil
	}
	if !d.opts.AllowLive {
		return fmt.Errorf("%w: %s. Nothing was moved. Stop them (or point them at the cluster) and run again, or pass --allow-live to drain anyway and wait until each queue stays empty",
			ErrLiveClients, strings.Join(live, "; "))
	}
	for _, l := range live {
		slog.Warn("draining with live clients", "client", l)
	}
	return nil
}

// ErrSourceConsumers: consumers still read the source's queues in a live
// cutover, where they must move to the cluster before the drain starts:
// a consumer left on the source would race the shovel for every message.
var ErrSourceConsumers = fmt.Errorf("%w: consumers still read the source", ErrLiveClients)

// CheckConsumers returns ErrSourceConsumers, naming them, while consumers
// other than warren's shovels read source queues in scope. It changes
// nothing.
func CheckConsumers(ctx context.Context, opts Options) error {
	return discovered(ctx, opts, func(_ *drainer, found *discovery) error {
		if len(found.consumers) > 0 {
			return fmt.Errorf("%w: %s", ErrSourceConsumers, strings.Join(found.consumers, "; "))
		}
		return nil
	})
}

// CheckLive returns ErrLiveClients, as Drain would before moving anything,
// when consumers or other connections are attached to source queues in
// scope and opts.AllowLive is not set. It changes nothing, so that a
// migration can refuse before it imports anything.
func CheckLive(ctx context.Context, opts Options) error {
	return discovered(ctx, opts, func(d *drainer, found *discovery) error { return d.checkLive(found.live) })
}

// discovered runs check on what discover finds, changing nothing.
func discovered(ctx context.Context, opts Options, check func(*drainer, *discovery) error) error {
	d, err := newDrainer(ctx, opts)
	if err != nil {
		return err
	}
	defer d.close()
	found, err := d.discover(ctx)
	if err != nil {
		return err
	}
	return check(d, found)
}
