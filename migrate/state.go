package migrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/warrenmq/warren/definitions"
)

// snapshot is what a migration remembers between runs: the source's
// definitions as the first run exported them.
//
// A drain changes the source: an auto-delete queue is deleted with its last
// consumer, the shovel, once it is empty. A rerun that planned from a fresh
// export alone would forget such a queue and then find it "unexpected" on
// the target. So every run plans from the union of the first export and the
// current one.
type snapshot struct {
	Source *definitions.Definitions `json:"source_definitions"`
}

func loadSnapshot(path string) (*snapshot, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read migration state: %w", err)
	}
	s := &snapshot{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("migration state %s is corrupt (%w); move it away to start afresh", path, err)
	}
	return s, nil
}

func saveSnapshot(path string, s *snapshot) error {
	if path == "" {
		return nil
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write migration state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil { // holds password hashes
		return fmt.Errorf("write migration state: %w", err)
	}
	return os.Rename(tmp, path)
}

// union returns now plus every object of earlier that now lacks.
func union(earlier, now *definitions.Definitions) *definitions.Definitions {
	out := now.Clone()
	for _, k := range definitions.Kinds {
		for _, o := range earlier.Objects(k) {
			if _, ok := out.Find(k, definitions.ID(k, o)); !ok {
				out.Add(k, o.Clone())
			}
		}
	}
	return out
}
