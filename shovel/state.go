package shovel

import (
	"fmt"
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
	defer s.mu.Unlock()
	s.Queues[stateKey(r.Vhost, r.Queue)] = &r
	if s.path == "" {
		return nil
	}
	if err := jsonfile.Write(s.path, s); err != nil {
		return fmt.Errorf("write drain state: %w", err)
	}
	return nil
}
