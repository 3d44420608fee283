package shovel

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/warrenmq/warren/broker"
)

// AbortResult is one shovel Abort found, and what became of it.
type AbortResult struct {
	Info
	// Removed: the shovel is gone from every node.
	Removed bool `json:"removed"`
	// Error says why it is not.
	Error string `json:"error,omitempty"`
}

// Abort removes every shovel of warren's on both sides (in opts.Vhosts, or
// all), ghosts included (see fleet.remove), and goes on past a shovel it
// cannot remove; the error (ErrAbortIncomplete) then names each with the
// broker's reason. Messages stay where they are: deleting a shovel requeues
// on the source whatever it had not yet acknowledged, so up to Prefetch
// messages per shovel that the target already has then exist on both sides
// (at-least-once), and none is lost — except in an auto-delete source queue,
// which RabbitMQ deletes with its messages when its last consumer, the
// shovel, goes.
//
// The drain state keeps each queue's first counts (status aborted): the
// next drain resumes with them, so the duplicates the abort causes are
// counted, not hidden. forget drops them instead, so the next drain counts
// afresh.
func Abort(ctx context.Context, opts Options, forget bool) ([]AbortResult, error) {
	state, err := OpenState(opts.StatePath)
	if err != nil {
		return nil, err
	}
	var out []AbortResult
	var failed []string
	for _, side := range []struct {
		ep   broker.Endpoint
		side Side
	}{{opts.Source, OnSource}, {opts.Target, OnTarget}} {
		api, err := side.ep.NewAPI()
		if err != nil {
			return out, err
		}
		f := &fleet{side: side.side, api: api}
		if side.side == OnTarget {
			// Node APIs clear what a node keeps after a peer was killed.
			if f.cluster, err = api.Discover(ctx); err != nil {
				slog.Warn("cannot list the target's nodes; removing shovels through its API only", "err", err)
			}
		}
		list, err := List(ctx, api, side.side)
		if err != nil {
			failed = append(failed, fmt.Sprintf("list shovels on the %s: %v", side.side, err))
			continue
		}
		for _, s := range list {
			if len(opts.Vhosts) > 0 && !slices.Contains(opts.Vhosts, s.Vhost) {
				continue
			}
			res := AbortResult{Info: s}
			if err := f.remove(ctx, s.Vhost, s.Name); err != nil {
				res.Error = err.Error()
				failed = append(failed, fmt.Sprintf("%s in vhost %s on the %s: %v", s.Name, s.Vhost, side.side, err))
			} else {
				res.Removed = true
			}
			out = append(out, res)
			if res.Removed {
				if err := markAborted(state, s.Vhost, strings.TrimPrefix(s.Name, NamePrefix)); err != nil {
					return out, err
				}
			}
		}
	}
	if forget {
		if _, err := state.Forget(opts.Vhosts); err != nil {
			return out, err
		}
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("%w: %s. The others were removed; run the same command again to retry",
			ErrAbortIncomplete, strings.Join(failed, "; "))
	}
	return out, nil
}

// markAborted keeps an unfinished queue's baseline for the next drain.
func markAborted(state *State, vhost, queue string) error {
	r, ok := state.Get(vhost, queue)
	if !ok || !unfinished(r) {
		return nil
	}
	r.Status, r.Detail = StatusAborted, "shovel removed by --abort; the next drain resumes with these counts"
	return state.Put(r)
}
