package shovel

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/warrenmq/warren/broker"
)

// alarms watches the target cluster's memory and disk alarms. A node in
// alarm blocks its publishers, but a shovel running on the target publishes
// over a direct connection that the alarm does not block: left running, it
// would keep writing into a cluster that is out of memory or disk. So the
// drain pauses while any target node is in alarm, whatever side the
// shovels run on, and resumes when the alarms clear.
type alarms struct {
	mu     sync.Mutex
	active []string // "node X: memory", sorted
	since  time.Time
	log    []string // pauses, for the report
}

// watchAlarms polls the target's nodes every interval until ctx ends.
func watchAlarms(ctx context.Context, api *broker.API, every time.Duration) *alarms {
	a := &alarms{}
	pollEvery(ctx, every, func() { a.poll(ctx, api) })
	return a
}

func (a *alarms) poll(ctx context.Context, api *broker.API) {
	nodes, err := api.ListNodes(ctx)
	if err != nil {
		return // keep the last known state; the drain's own reads report outages
	}
	var now []string
	for _, n := range nodes {
		if al := n.Alarms(); n.Running && len(al) > 0 {
			now = append(now, fmt.Sprintf("target node %s: %s alarm", n.Name, strings.Join(al, " and ")))
		}
	}
	sort.Strings(now)
	a.mu.Lock()
	defer a.mu.Unlock()
	if slices.Equal(now, a.active) {
		return
	}
	switch {
	case len(now) > 0 && len(a.active) == 0:
		a.since = time.Now()
		slog.Warn("drain paused: a resource alarm blocks the target's publishers", "alarms", strings.Join(now, "; "))
	case len(now) == 0:
		d := time.Since(a.since).Round(time.Second)
		a.log = append(a.log, fmt.Sprintf("paused %s for %s", d, strings.Join(a.active, "; ")))
		slog.Info("drain resumed: the target's alarms cleared", "paused", d)
	}
	a.active = now
}

// state returns the active alarms.
func (a *alarms) state() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.active
}

// pollEvery calls f now, then every interval, until ctx ends.
func pollEvery(ctx context.Context, every time.Duration, f func()) {
	f()
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f()
			}
		}
	}()
}

// pauses lists the pauses so far, for the report; an alarm still active
// is listed as ongoing.
func (a *alarms) pauses() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.log)
	if len(a.active) > 0 {
		out = append(out, fmt.Sprintf("paused since %s for %s", a.since.Format(time.TimeOnly), strings.Join(a.active, "; ")))
	}
	return out
}
