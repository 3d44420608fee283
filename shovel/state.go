package shovel

import (
	"fmt"
	"slices"
	"sync"

	"github.com/warrenmq/warren/internal/jsonfile"
)

// State is what warren remembers between runs of a drain, so that a run
// killed half-way can be resumed and still check its counts: the depths
// seen before a queue's shovel was declared are only knowable then.
type State struct {
	path   string
	mu     sync.Mutex
	Queues map[string]*QueueResult `json:"queues"`
}

func stateKey(vhost, queue string) string { return vhost + "\x00" + queue }

// OpenState loads the state file at path, or starts an empty one. An empty
// path keeps state in memory only.
func OpenState(path string) (*State, error) {
	s := &State{path: path, Queues: map[string]*QueueResult{}}
	if path == "" {
		return s, nil
	}
	if _, err := jsonfile.Read(path, s); err != nil {
		return nil, fmt.Errorf("read drain state: %w", err)
	}
	if s.Queues == nil {
		s.Queues = map[string]*QueueResult{}
	}
	return s, nil
}

// Get returns a copy of a queue's entry.
func (s *State) Get(vhost, queue string) (QueueResult, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.Queues[stateKey(vhost, queue)]
	if !ok {
		return QueueResult{}, false
	}
	return *r, true
}

// Put records a queue's entry and writes the file atomically.
func (s *State) Put(r QueueResult) error {
	s.mu.Lock()
	s.Queues[stateKey(r.Vhost, r.Queue)] = &r
	s.mu.Unlock()
	return s.save()
}

// unfinished reports whether an entry holds a baseline a later run must
// keep: the queue was not drained yet (running, interrupted, failed,
// aborted).
func unfinished(r QueueResult) bool { return r.Status != "" && r.Status != StatusDrained }

// All returns copies of every entry.
func (s *State) All() []QueueResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]QueueResult, 0, len(s.Queues))
	for _, r := range s.Queues {
		out = append(out, *r)
	}
	return out
}

// MarkVerified records that a verification passed the counts of these
// queues (vhost, queue pairs), so later runs stop reporting them.
func (s *State) MarkVerified(queues [][2]string) error {
	s.mu.Lock()
	changed := false
	for _, q := range queues {
		if r, ok := s.Queues[stateKey(q[0], q[1])]; ok && r.Status == StatusDrained && !r.Verified {
			r.Verified, changed = true, true
		}
	}
	s.mu.Unlock()
	if !changed {
		return nil
	}
	return s.save()
}

// Forget drops the entries of these vhosts (all when empty), so that the
// next drain counts afresh.
func (s *State) Forget(vhosts []string) (int, error) {
	s.mu.Lock()
	n := 0
	for k, r := range s.Queues {
		if len(vhosts) == 0 || slices.Contains(vhosts, r.Vhost) {
			delete(s.Queues, k)
			n++
		}
	}
	s.mu.Unlock()
	if n == 0 {
		return 0, nil
	}
	return n, s.save()
}

func (s *State) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" {
		return nil
	}
	if err := jsonfile.Write(s.path, s); err != nil {
		return fmt.Errorf("write drain state: %w", err)
	}
	return nil
}

// MarkVerified records, in the state file at path, that a verification
// passed the counts of these queues (vhost, queue pairs).
func MarkVerified(path string, queues [][2]string) error {
	if path == "" {
		return nil
	}
	s, err := OpenState(path)
	if err != nil {
		return err
	}
	return s.MarkVerified(queues)
}
