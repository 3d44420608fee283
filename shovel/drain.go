package shovel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
)

// Options configure a drain.
type Options struct {
	Source, Target broker.Endpoint
	// Vhosts limits the drain to these vhosts; all vhosts when empty.
	Vhosts []string
	// Side is where the shovels run; OnTarget when empty.
	Side Side
	// ShovelSourceURL is how the shovels reach the source, when it differs
	// from what warren uses (e.g. from inside Kubernetes). Default: the
	// source's first AMQP URL.
	ShovelSourceURL string
	// ShovelTargetURLs is how shovels on the source reach the target.
	// Default: every target AMQP URL, so a shovel fails over between nodes.
	ShovelTargetURLs []string
	// Parallel is how many queues drain at once (default 4).
	Parallel int
	// Prefetch is each shovel's src-prefetch-count (default DefaultPrefetch).
	Prefetch int
	// AllowLive lets the drain run while other clients are attached to the
	// source; each queue is then done once it has stayed empty for Settle.
	AllowLive bool
	Settle    time.Duration
	// StallTimeout fails a queue whose counts stop moving for this long
	// (default 2 minutes). Its shovel is left in place: nothing is lost.
	StallTimeout time.Duration
	// StatePath is the resume file; empty keeps state in memory only.
	StatePath string
	// Progress receives per-queue progress; nil reports nothing.
	Progress Progress
	// Poll is how often counts are read (default 250ms).
	Poll time.Duration
}

func (o *Options) defaults() error {
	var err error
	if o.Side, err = ParseSide(string(o.Side)); err != nil {
		return err
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.Prefetch <= 0 {
		o.Prefetch = DefaultPrefetch
	}
	if o.Settle <= 0 {
		o.Settle = 10 * time.Second
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 2 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = NoProgress{}
	}
	if o.ShovelSourceURL == "" && len(o.Source.AMQP) > 0 {
		o.ShovelSourceURL = o.Source.URLWithVhost(0, "")
	}
	if len(o.ShovelTargetURLs) == 0 {
		for i := range o.Target.AMQP {
			o.ShovelTargetURLs = append(o.ShovelTargetURLs, o.Target.URLWithVhost(i, ""))
		}
	}
	return nil
}

// ackGrace is how long a drained queue waits for the shovel's last acks.
const ackGrace = time.Second

// expected is what the work should move, for progress: a resumed queue's
// recorded depth, otherwise its current one.
func (d *drainer) expected(ctx context.Context, work []workItem) int {
	n := 0
	for _, w := range work {
		if r, ok := d.state.Get(w.vhost, w.name); ok && r.Status == StatusPending {
			n += r.SourceBefore
			continue
		}
		if ready, _, err := d.src.Depth(ctx, w.vhost, w.name); err == nil {
			n += ready
		}
	}
	return n
}

// ErrLiveClients is returned when clients other than warren are attached to
// the source and AllowLive is off.
var ErrLiveClients = errors.New("clients are still attached to the source")

// ErrNotConserved is returned when a queue's counts do not add up.
var ErrNotConserved = errors.New("message counts not conserved")

// ErrInterrupted is returned when the drain's context is cancelled (Ctrl-C,
// SIGTERM) before every queue finished. Nothing is lost: started shovels
// keep moving messages, and the same command run again resumes.
var ErrInterrupted = errors.New("drain interrupted")

type drainer struct {
	opts           Options
	srcAPI, dstAPI *broker.API
	src, dst       *broker.Depths
	state          *State
}

// Drain moves every message queued on the source into the same queue on the
// target. Each target queue must already exist (import definitions first).
// It returns a report even when some queues failed; the error then names
// them. Running it again resumes an interrupted drain, and does nothing
// after a complete one.
func Drain(ctx context.Context, opts Options) (*Report, error) {
	start := time.Now()
	d, err := newDrainer(opts)
	if err != nil {
		return nil, err
	}
	defer d.close()
	opts = d.opts
	report := &Report{Side: opts.Side, Parallel: opts.Parallel}

	work, skipped, live, err := d.discover(ctx)
	if err != nil {
		return nil, err
	}
	report.Skipped = skipped
	if err := d.checkLive(live); err != nil {
		return nil, err
	}
	if len(work) == 0 {
		report.finish(start)
		return report, nil
	}
	slog.Info("draining", "queues", len(work), "side", opts.Side, "parallel", opts.Parallel)
	opts.Progress.Expect(d.expected(ctx, work))

	results := make([]QueueResult, len(work))
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	for i, q := range work {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = QueueResult{Vhost: q.vhost, Queue: q.name, Shovel: Name(q.name), Status: StatusInterrupted, Detail: "not started before the interrupt"}
				return
			}
			defer func() { <-sem }()
			results[i] = d.queue(ctx, q)
		}()
	}
	wg.Wait()
	opts.Progress.Close()
	report.Queues = results
	report.finish(start)

	var failed []string
	for _, r := range report.Failed() {
		failed = append(failed, fmt.Sprintf("%s/%s: %s", r.Vhost, r.Queue, r.Detail))
	}
	if len(failed) > 0 {
		return report, fmt.Errorf("%w: %d of %d queues: %s", ErrNotConserved, len(failed), len(results), strings.Join(failed, "; "))
	}
	interrupted := 0
	for _, r := range results {
		if r.Status == StatusInterrupted {
			interrupted++
		}
	}
	if interrupted > 0 {
		return report, fmt.Errorf("%w: %d of %d queues unfinished. Nothing is lost: shovels already started keep moving messages, "+
			"and running the same command again resumes with the first run's counts (or `warren drain --abort` removes warren's shovels)",
			ErrInterrupted, interrupted, len(results))
	}
	return report, nil
}

type workItem struct {
	vhost, name string
	resume      bool // a state entry or a shovel of ours exists
}

func newDrainer(opts Options) (*drainer, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	d := &drainer{opts: opts, src: broker.NewDepths(opts.Source), dst: broker.NewDepths(opts.Target)}
	var err error
	if d.srcAPI, err = opts.Source.NewAPI(); err == nil {
		if d.dstAPI, err = opts.Target.NewAPI(); err == nil {
			d.state, err = OpenState(opts.StatePath)
		}
	}
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *drainer) close() {
	d.src.Close()
	d.dst.Close()
}

// CheckLive returns ErrLiveClients, as Drain would before moving anything,
// when consumers or other connections are attached to source queues in
// scope and opts.AllowLive is not set. It changes nothing, so that a
// migration can refuse before it imports anything.
func CheckLive(ctx context.Context, opts Options) error {
	d, err := newDrainer(opts)
	if err != nil {
		return err
	}
	defer d.close()
	_, _, live, err := d.discover(ctx)
	if err != nil {
		return err
	}
	return d.checkLive(live)
}

// discover lists the source queues that hold messages, plus those a previous
// run left unfinished, and the clients other than warren attached to any
// queue in scope.
func (d *drainer) discover(ctx context.Context) (work []workItem, skipped, live []string, err error) {
	// A mistyped --vhost would select no queue and report success.
	if err := d.srcAPI.CheckVhosts(ctx, d.opts.Vhosts); err != nil {
		return nil, nil, nil, err
	}
	var queues []struct {
		Name      string `json:"name"`
		Vhost     string `json:"vhost"`
		Exclusive bool   `json:"exclusive"`
		Messages  int    `json:"messages"`
	}
	if err := d.srcAPI.Get(ctx, "queues?columns=name,vhost,exclusive,messages", &queues); err != nil {
		return nil, nil, nil, fmt.Errorf("list source queues: %w", err)
	}
	existing, err := d.shovels(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	want := map[string]bool{}
	for _, v := range d.opts.Vhosts {
		want[v] = true
	}
	vhosts := map[string]bool{}
	var unsure []workItem
	for _, q := range queues {
		if len(want) > 0 && !want[q.Vhost] {
			continue
		}
		vhosts[q.Vhost] = true
		if q.Exclusive {
			// Owned by one connection and gone with it: nothing to move.
			skipped = append(skipped, fmt.Sprintf("%s/%s: exclusive", q.Vhost, q.Name))
			continue
		}
		entry, inState := d.state.Get(q.Vhost, q.Name)
		pending := inState && entry.Status == StatusPending
		_, hasShovel := existing[stateKey(q.Vhost, q.Name)]
		// The HTTP counts lag; a passive declare is exact.
		ready, consumers, err := d.src.Depth(ctx, q.Vhost, q.Name)
		if err != nil {
			return nil, nil, nil, err
		}
		if hasShovel && consumers > 0 {
			consumers-- // our own shovel
		}
		if consumers > 0 {
			live = append(live, fmt.Sprintf("%d consumer(s) on queue %s in vhost %s", consumers, q.Name, q.Vhost))
		}
		item := workItem{vhost: q.Vhost, name: q.Name, resume: pending || hasShovel}
		switch {
		case item.resume || ready > 0:
			work = append(work, item)
		case q.Messages > 0:
			// Passive says empty, HTTP says not: unacked messages (then a
			// consumer shows up as live above), a lagging count, or a
			// quorum queue's spurious zero. Settled below.
			unsure = append(unsure, item)
		}
	}
	settled, err := d.settle(ctx, unsure)
	if err != nil {
		return nil, nil, nil, err
	}
	work = append(work, settled...)
	conns, err := d.clients(ctx, vhosts)
	if err != nil {
		return nil, nil, nil, err
	}
	live = append(live, conns...)
	sort.Strings(live)
	sort.Slice(work, func(i, j int) bool {
		if work[i].vhost != work[j].vhost {
			return work[i].vhost < work[j].vhost
		}
		return work[i].name < work[j].name
	})
	return work, skipped, live, nil
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
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		var still []workItem
		for _, w := range unsure {
			ready, _, err := d.src.Depth(ctx, w.vhost, w.name)
			if err != nil {
				return nil, err
			}
			total, err := d.sourceTotal(ctx, w.vhost, w.name)
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

// shovels lists warren's shovels on the side that runs them.
func (d *drainer) shovels(ctx context.Context) (map[string]Info, error) {
	api := d.dstAPI
	if d.opts.Side == OnSource {
		api = d.srcAPI
	}
	list, err := List(ctx, api, d.opts.Side)
	if err != nil {
		return nil, err
	}
	out := map[string]Info{}
	for _, s := range list {
		out[stateKey(s.Vhost, strings.TrimPrefix(s.Name, NamePrefix))] = s
	}
	return out, nil
}

// clients lists connections to the source vhosts other than warren's own
// and its shovels'. The list lags by the stats interval; the consumer
// counts from passive declares in discover do not.
func (d *drainer) clients(ctx context.Context, vhosts map[string]bool) ([]string, error) {
	var live []string
	for v := range vhosts {
		var conns []struct {
			Name     string `json:"name"`
			Provided string `json:"user_provided_name"`
			User     string `json:"user"`
		}
		if err := d.srcAPI.Get(ctx, "vhosts/"+broker.PathEscape(v)+"/connections", &conns); err != nil {
			return nil, fmt.Errorf("list source connections in vhost %s: %w", v, err)
		}
		for _, c := range conns {
			if c.Provided == "warren" || strings.HasPrefix(c.Provided, "Shovel "+NamePrefix) {
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
		return fmt.Errorf("%w: %s. Stop them (or point them at the cluster) and run again, or pass --allow-live to drain anyway and wait until each queue stays empty",
			ErrLiveClients, strings.Join(live, "; "))
	}
	for _, l := range live {
		slog.Warn("draining with live clients", "client", l)
	}
	return nil
}

func (d *drainer) api(side Side) *broker.API {
	if side == OnSource {
		return d.srcAPI
	}
	return d.dstAPI
}

func (d *drainer) spec(vhost, queue string) Spec {
	s := Spec{Vhost: vhost, Queue: queue, Prefetch: d.opts.Prefetch}
	withVhost := func(raw string) string {
		u, err := amqp.ParseURI(raw)
		if err != nil {
			return raw
		}
		u.Vhost = vhost
		return u.String()
	}
	if d.opts.Side == OnSource {
		s.SrcURIs = []string{DirectURI(vhost)}
		for _, u := range d.opts.ShovelTargetURLs {
			s.DestURIs = append(s.DestURIs, withVhost(u))
		}
	} else {
		s.SrcURIs = []string{withVhost(d.opts.ShovelSourceURL)}
		s.DestURIs = []string{DirectURI(vhost)}
	}
	return s
}

// queue drains one queue and reports it; failures are in the result.
func (d *drainer) queue(ctx context.Context, w workItem) QueueResult {
	start := time.Now()
	r, err := d.drainQueue(ctx, w)
	r.Seconds += time.Since(start).Seconds()
	// The state keeps the status drainQueue left: still pending while a
	// shovel of ours runs (interrupted, stalled), so the next run resumes
	// with the first run's counts. Nothing is recorded before counting.
	if r.Status != "" {
		if perr := d.state.Put(r); perr != nil && err == nil {
			err = perr
		}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		r.Status, r.Detail = StatusInterrupted, err.Error()
		slog.Warn("queue drain interrupted", "vhost", w.vhost, "queue", w.name)
	case err != nil:
		r.Status, r.Detail = StatusFailed, err.Error()
		slog.Error("queue not drained", "vhost", w.vhost, "queue", w.name, "err", err)
	}
	return r
}

func (d *drainer) drainQueue(ctx context.Context, w workItem) (QueueResult, error) {
	r := QueueResult{Vhost: w.vhost, Queue: w.name, Shovel: Name(w.name), Live: d.opts.AllowLive}
	api := d.api(d.opts.Side)

	// The destination must exist as planned: a shovel publishing to a
	// missing queue through the default exchange is confirmed and dropped.
	_, dstConsumers, err := d.dst.Depth(ctx, w.vhost, w.name)
	if errors.Is(err, broker.ErrNoQueue) {
		return r, fmt.Errorf("target has no queue %q in vhost %q; import the definitions first (warren definitions import)", w.name, w.vhost)
	}
	if err != nil {
		return r, err
	}
	if dstConsumers > 0 && !d.opts.AllowLive {
		// Consumers on the target take messages as they arrive, so its
		// depth can no longer prove that every message came.
		return r, fmt.Errorf("%w: %d consumer(s) on the target queue already; pass --allow-live to drain anyway (counts then cannot be checked)", ErrLiveClients, dstConsumers)
	}
	targetNow, err := d.settledTargetDepth(ctx, w.vhost, w.name)
	if err != nil {
		return r, err
	}

	if prev, ok := d.state.Get(w.vhost, w.name); ok && prev.Status == StatusPending {
		// Resume: keep the depths seen before the first shovel.
		r.SourceBefore, r.TargetBefore, r.Seconds, r.Resumed = prev.SourceBefore, prev.TargetBefore, prev.Seconds, true
		slog.Info("resuming drain", "vhost", w.vhost, "queue", w.name, "source_before", r.SourceBefore)
	} else {
		if w.resume {
			// Our shovel exists but we have no record of it: stop it so
			// the counts below are exact (unacked messages are requeued).
			slog.Warn("found a shovel of an earlier run without its state; restarting it", "vhost", w.vhost, "queue", w.name)
			if err := Delete(ctx, api, w.vhost, Name(w.name)); err != nil {
				return r, err
			}
			if err := waitGone(ctx, api, w.vhost, Name(w.name)); err != nil {
				return r, err
			}
			if targetNow, err = d.settledTargetDepth(ctx, w.vhost, w.name); err != nil {
				return r, err
			}
		}
		srcNow, _, err := d.src.Depth(ctx, w.vhost, w.name)
		if err != nil {
			return r, err
		}
		if err := d.checkRoom(ctx, w, srcNow, targetNow); err != nil {
			return r, err
		}
		r.SourceBefore, r.TargetBefore = srcNow, targetNow
		r.Status = StatusPending
		// Record before declaring, so a kill from here on can resume.
		if err := d.state.Put(r); err != nil {
			return r, err
		}
	}
	r.Status = StatusPending

	bar := d.opts.Progress.Queue(w.vhost, w.name, r.SourceBefore)
	defer func() { bar.Done(r) }()

	// Re-declaring a running shovel restarts it, and a restart requeues its
	// in-flight messages after the target may already have them. A resumed
	// run therefore leaves a running shovel of ours alone.
	if !(r.Resumed && w.resume) {
		if err := Declare(ctx, api, d.spec(w.vhost, w.name)); err != nil {
			return r, err
		}
	}
	return d.watch(ctx, api, &r, bar)
}

// watch follows a queue's counts until it is drained, then removes its
// shovel and checks the counts.
func (d *drainer) watch(ctx context.Context, api *broker.API, r *QueueResult, bar QueueProgress) (QueueResult, error) {
	tick := time.NewTicker(d.opts.Poll)
	defer tick.Stop()
	lastMoved, lastChange := -1, time.Now()
	var emptySince, reachedAt time.Time
	lastRead := time.Now()
	var lastWarned time.Time
	for {
		select {
		case <-ctx.Done():
			// Leave the shovel running: it keeps moving messages safely
			// and the next run picks it up.
			return *r, fmt.Errorf("interrupted; the shovel keeps running, run the same command again to finish: %w", ctx.Err())
		case <-tick.C:
		}
		srcReady, _, err := d.src.Depth(ctx, r.Vhost, r.Queue)
		if err == nil {
			err = d.observeTarget(ctx, r)
		}
		if err != nil {
			// A broker that stays unreachable must not keep warren waiting
			// for ever: give up after the stall timeout, shovel in place.
			if time.Since(lastRead) > d.opts.StallTimeout {
				return *r, fmt.Errorf("cannot read queue depths for %s: %w; the shovel is left running: fix the cause and run again, or `warren drain --abort`", d.opts.StallTimeout, err)
			}
			// Polls are frequent; say it once, then every 10 s while it lasts.
			if time.Since(lastWarned) >= 10*time.Second {
				lastWarned = time.Now()
				slog.Warn("cannot read queue depths; retrying until the stall timeout", "vhost", r.Vhost, "queue", r.Queue,
					"for", time.Since(lastRead).Round(time.Second), "stall_timeout", d.opts.StallTimeout, "err", err)
			}
			continue
		}
		lastRead, lastWarned = time.Now(), time.Time{}
		bar.Set(r.Moved)
		if r.Moved != lastMoved {
			lastMoved, lastChange = r.Moved, time.Now()
		}

		done := false
		if srcReady == 0 {
			// Ready is exact but says nothing of messages the shovel holds
			// unacknowledged. The HTTP API's total (ready + unacked) lags,
			// but during a drain without producers it only falls, so a
			// stale zero cannot occur and a zero is the truth.
			total, err := d.sourceTotal(ctx, r.Vhost, r.Queue)
			if err != nil {
				if time.Since(lastRead) > d.opts.StallTimeout {
					return *r, fmt.Errorf("cannot read the source's totals for %s: %w; the shovel is left running", d.opts.StallTimeout, err)
				}
				slog.Warn("reading source totals", "err", err)
				continue
			}
			if d.opts.AllowLive {
				if total != 0 {
					emptySince = time.Time{}
				} else if emptySince.IsZero() {
					emptySince = time.Now()
				}
				done = !emptySince.IsZero() && time.Since(emptySince) >= d.opts.Settle
			} else if r.Moved >= r.SourceBefore {
				// Everything arrived; what may remain is the shovel's acks
				// for the last confirms, sent the moment they come. A
				// quorum source's HTTP total lags by a 5s metrics tick, so
				// after a short grace the acks are taken as landed; should
				// one not have, the recheck after removal moves it again.
				if reachedAt.IsZero() {
					reachedAt = time.Now()
				}
				done = total == 0 || time.Since(reachedAt) >= ackGrace
			}
		} else {
			emptySince = time.Time{}
		}

		if !done && time.Since(lastChange) > d.opts.StallTimeout {
			if srcReady > 0 {
				st := d.shovelState(ctx, api, r.Vhost)
				return *r, fmt.Errorf("no progress for %s with %d messages still on the source (shovel %s); the shovel is left running: fix the cause and run again, or `warren drain --abort`",
					d.opts.StallTimeout, srcReady, st)
			}
			done = true // source empty; counts below tell whether all arrived
		}
		if !done {
			continue
		}

		// Removing the shovel requeues anything unacknowledged, so look again
		// afterwards: if the source is not empty after all, go on.
		if err := Delete(ctx, api, r.Vhost, r.Shovel); err != nil {
			return *r, err
		}
		if err := waitGone(ctx, api, r.Vhost, r.Shovel); err != nil {
			return *r, err
		}
		srcReady, _, err = d.src.Depth(ctx, r.Vhost, r.Queue)
		switch {
		case errors.Is(err, broker.ErrNoQueue):
			// An auto-delete queue goes with its last consumer, the shovel,
			// once it is empty: every message had arrived by then.
			r.Detail, r.SourceDeleted = "source queue auto-deleted when its shovel stopped", true
			srcReady = 0
		case err != nil:
			return *r, err
		}
		if srcReady > 0 && !d.opts.AllowLive {
			slog.Info("messages came back to the source after the shovel stopped; continuing", "vhost", r.Vhost, "queue", r.Queue, "ready", srcReady)
			if err := Declare(ctx, api, d.spec(r.Vhost, r.Queue)); err != nil {
				return *r, err
			}
			lastChange = time.Now()
			continue
		}
		if err := d.observeTarget(ctx, r); err != nil {
			return *r, err
		}
		bar.Set(r.Moved)
		r.Status = StatusDrained
		switch {
		case d.opts.AllowLive:
			r.Detail = "live clients: counts include their traffic"
		case r.Moved > r.SourceBefore:
			r.Detail = fmt.Sprintf("%d more arrived than were queued: redelivered after a connection loss (at-least-once)", r.Moved-r.SourceBefore)
		case r.Moved < r.SourceBefore:
			r.Status = StatusFailed
			return *r, fmt.Errorf("%d queued on the source but %d arrived: check the target queue's limits (max-length, TTL) and consumers", r.SourceBefore, r.Moved)
		}
		return *r, nil
	}
}

// targetDepth reads a target queue's depth as the larger of two readings
// that can each only be too low: a quorum queue answers a passive declare
// with 0 when its leader does not reply within 250ms (rabbit_quorum_queue
// stat/2), and the HTTP API's count lags by a metrics tick. While a drain
// fills the queue, the larger is the better lower bound.
func (d *drainer) targetDepth(ctx context.Context, vhost, queue string) (int, error) {
	passive, _, perr := d.dst.Depth(ctx, vhost, queue)
	var q struct {
		Messages int `json:"messages"`
	}
	herr := d.dstAPI.Get(ctx, "queues/"+broker.PathEscape(vhost)+"/"+broker.PathEscape(queue), &q)
	if perr != nil && herr != nil {
		return 0, perr
	}
	return max(passive, q.Messages), nil
}

// settledTargetDepth reads a target queue that nothing writes to yet a few
// times and keeps the largest reading, so one spurious zero cannot become
// the baseline.
func (d *drainer) settledTargetDepth(ctx context.Context, vhost, queue string) (int, error) {
	best := -1
	var lastErr error
	for i := 0; i < 3; i++ {
		n, err := d.targetDepth(ctx, vhost, queue)
		if err == nil {
			best = max(best, n)
		} else {
			lastErr = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	if best < 0 {
		return 0, lastErr
	}
	return best, nil
}

// observeTarget updates a queue's arrivals. Without consumers on the target
// its depth only grows during a drain, so the highest reading so far is
// kept: a low reading is a measurement artefact, never a loss.
func (d *drainer) observeTarget(ctx context.Context, r *QueueResult) error {
	n, err := d.targetDepth(ctx, r.Vhost, r.Queue)
	if err != nil {
		return err
	}
	if d.opts.AllowLive {
		r.TargetAfter = n // consumers may take messages: no monotony
	} else {
		r.TargetAfter = max(r.TargetAfter, n)
	}
	r.Moved = r.TargetAfter - r.TargetBefore
	return nil
}

// sourceTotal is ready + unacknowledged as the HTTP API last saw it.
func (d *drainer) sourceTotal(ctx context.Context, vhost, queue string) (int, error) {
	var q struct {
		Messages *int `json:"messages"`
	}
	if err := d.srcAPI.Get(ctx, "queues/"+broker.PathEscape(vhost)+"/"+broker.PathEscape(queue), &q); err != nil {
		return 0, err
	}
	if q.Messages == nil {
		return -1, nil // no stats yet: unknown, so not zero
	}
	return *q.Messages, nil
}

func (d *drainer) shovelState(ctx context.Context, api *broker.API, vhost string) string {
	list, err := List(ctx, api, d.opts.Side)
	if err != nil {
		return "state unknown: " + err.Error()
	}
	var out []string
	for _, s := range list {
		if s.Vhost == vhost {
			out = append(out, fmt.Sprintf("%s %s %s", s.Name, s.State, s.Reason))
		}
	}
	return strings.Join(out, ", ")
}

// waitGone waits until the broker no longer runs the shovel, so its
// unacknowledged messages are back on the source before anyone counts.
func waitGone(ctx context.Context, api *broker.API, vhost, name string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status []Info
		err := api.Do(ctx, http.MethodGet, "shovels/"+broker.PathEscape(vhost), nil, &status)
		found := false
		for _, s := range status {
			found = found || s.Name == name
		}
		if err == nil && !found {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("shovel %s in vhost %s still reported after deletion", name, vhost)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Abort removes warren's shovels on both sides (in opts.Vhosts, or all),
// forgets their unfinished entries in the state file so that a later drain
// counts afresh, and returns what it removed. Messages stay where they are:
// deleting a shovel requeues on the source whatever it had not yet
// acknowledged. Up to Prefetch messages per shovel that had reached the
// target but were not yet acknowledged then exist on both sides
// (at-least-once); none is lost.
func Abort(ctx context.Context, opts Options) ([]Info, error) {
	want := map[string]bool{}
	for _, v := range opts.Vhosts {
		want[v] = true
	}
	state, err := OpenState(opts.StatePath)
	if err != nil {
		return nil, err
	}
	var removed []Info
	for _, side := range []struct {
		ep   broker.Endpoint
		side Side
	}{{opts.Source, OnSource}, {opts.Target, OnTarget}} {
		api, err := side.ep.NewAPI()
		if err != nil {
			return removed, err
		}
		list, err := List(ctx, api, side.side)
		if err != nil {
			return removed, err
		}
		for _, s := range list {
			if len(want) > 0 && !want[s.Vhost] {
				continue
			}
			if err := Delete(ctx, api, s.Vhost, s.Name); err != nil {
				return removed, err
			}
			if err := waitGone(ctx, api, s.Vhost, s.Name); err != nil {
				return removed, err
			}
			removed = append(removed, s)
			queue := strings.TrimPrefix(s.Name, NamePrefix)
			if r, ok := state.Get(s.Vhost, queue); ok && r.Status == StatusPending {
				r.Status, r.Detail = StatusFailed, "aborted"
				if err := state.Put(r); err != nil {
					return removed, err
				}
			}
		}
	}
	return removed, nil
}

// checkRoom refuses, before anything moves, a target queue whose length
// limit would drop messages: with the default overflow (drop-head) a queue
// at its max-length silently discards its oldest messages, so the shovel's
// confirms would not mean the messages are kept. This happens when the
// target's queue already existed with other limits (a skipped conflict) or
// a target policy caps it.
func (d *drainer) checkRoom(ctx context.Context, w workItem, incoming, there int) error {
	var q struct {
		Arguments map[string]any `json:"arguments"`
		Effective map[string]any `json:"effective_policy_definition"`
	}
	path := "queues/" + broker.PathEscape(w.vhost) + "/" + broker.PathEscape(w.name)
	if err := d.dstAPI.Get(ctx, path, &q); err != nil {
		return fmt.Errorf("read the target queue's limits: %w", err)
	}
	overflow, _ := q.Arguments["x-overflow"].(string)
	if overflow == "" {
		overflow, _ = q.Effective["overflow"].(string)
	}
	if overflow != "" && overflow != "drop-head" {
		return nil // reject-publish(-dlx): the shovel's publishes are refused, nothing is dropped silently
	}
	limit, source := -1, ""
	for _, l := range []struct {
		v    any
		from string
	}{{q.Arguments["x-max-length"], "argument x-max-length"}, {q.Effective["max-length"], "policy max-length"}} {
		if n, ok := l.v.(float64); ok && (limit < 0 || int(n) < limit) {
			limit, source = int(n), l.from
		}
	}
	if limit < 0 || there+incoming <= limit {
		return nil
	}
	return fmt.Errorf("target queue %q in vhost %q holds at most %d messages (%s, overflow drop-head) and would drop %d of the %d it would then hold; "+
		"nothing was moved: raise or remove the limit on the target (or empty the queue there), then run again",
		w.name, w.vhost, limit, source, there+incoming-limit, there+incoming)
}
