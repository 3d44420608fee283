package shovel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
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
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read drain state: %w", err)
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("drain state %s is corrupt (%w); move it away to start afresh", path, err)
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
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("write drain state: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write drain state: %w", err)
	}
	return os.Rename(tmp, s.path)
}
