// Package shovel drains messages still queued on the source broker into the
// same queues on the target cluster over dynamic shovels, and judges for
// itself when each queue is done.
//
// Why warren does not trust the shovel to finish on its own: with
// `src-delete-after: queue-length` a shovel moves only the count it saw at
// start and can stop early with a large prefetch. Instead warren watches
// current counts over AMQP (passive declares, which are current; for a
// quorum queue, whose leader may briefly answer 0, the larger of that and
// the HTTP count) and removes
// a shovel only when the source queue is empty, nothing is in flight, and
// every message has arrived at the target.
package shovel

import (
	"fmt"
	"net/url"
	"strings"
)

// NamePrefix marks the shovels warren owns. Every drain shovel is named
// NamePrefix + queue name, in the queue's vhost, so a rerun finds its own
// shovels and `warren drain --abort` never touches anybody else's.
const NamePrefix = "warren.drain."

// Name is the shovel name for a queue.
func Name(queue string) string { return NamePrefix + queue }

// IsWarren reports whether a shovel name is one of warren's.
func IsWarren(name string) bool { return strings.HasPrefix(name, NamePrefix) }

// Side says which broker runs the shovels.
type Side string

const (
	// OnTarget runs shovels on the target cluster: they consume from the
	// source over the network and publish into the local queue over a
	// direct (in-process) connection. It spreads the work over the
	// cluster's nodes and keeps load off the old broker. The default.
	OnTarget Side = "target"
	// OnSource runs shovels on the source broker: local consume, remote
	// publish with confirms. Use it when the target's nodes cannot reach
	// the source but the source can reach the target.
	OnSource Side = "source"
)

// ParseSide validates a --shovel-side value.
func ParseSide(s string) (Side, error) {
	switch Side(s) {
	case OnTarget, OnSource:
		return Side(s), nil
	case "", "auto":
		return OnTarget, nil
	}
	return "", fmt.Errorf("shovel side %q: want target, source or auto", s)
}

// Spec is what a drain shovel does for one queue.
type Spec struct {
	Vhost, Queue string
	// SrcURIs and DestURIs as the broker that runs the shovel sees them.
	// "amqp:///vhost" is a direct connection to that broker itself.
	SrcURIs, DestURIs []string
	Prefetch          int
}

// Value is the shovel's runtime parameter value.
//
// The destination is the default exchange with the queue's name as routing
// key, never `dest-queue`: with `dest-queue` a shovel declares a missing
// destination itself, as a classic queue, which would silently undo the
// quorum conversion. Warren checks that every destination exists before it
// declares a shovel, because a publish to a missing queue through the
// default exchange is confirmed and dropped.
func (s Spec) Value() map[string]any {
	prefetch := s.Prefetch
	if prefetch <= 0 {
		prefetch = DefaultPrefetch
	}
	return map[string]any{
		"src-protocol":       "amqp091",
		"src-uri":            s.SrcURIs,
		"src-queue":          s.Queue,
		"src-prefetch-count": prefetch,
		"dest-protocol":      "amqp091",
		"dest-uri":           s.DestURIs,
		"dest-exchange":      "",
		"dest-exchange-key":  s.Queue,
		// A source message is acknowledged only once the target has
		// confirmed it: a crash anywhere requeues, never loses.
		"ack-mode":                  "on-confirm",
		"dest-add-forward-headers":  false,
		"dest-add-timestamp-header": false,
		"reconnect-delay":           1,
	}
}

// DefaultPrefetch bounds the messages a shovel has in flight. Large enough
// to keep the pipe full across a network round trip, small enough that a
// restart requeues little.
const DefaultPrefetch = 1000

// DirectURI is the URI by which a shovel reaches the broker it runs on.
func DirectURI(vhost string) string { return "amqp:///" + url.PathEscape(vhost) }
