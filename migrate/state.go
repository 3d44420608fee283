package migrate

import (
	"fmt"

	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/jsonfile"
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
	s := &snapshot{}
	found, err := jsonfile.Read(path, s)
	if err != nil {
		return nil, fmt.Errorf("read migration state: %w", err)
	}
	if !found {
		return nil, nil
	}
	return s, nil
}

func saveSnapshot(path string, s *snapshot) error {
	if path == "" {
		return nil
	}
	if err := jsonfile.Write(path, s); err != nil {
		return fmt.Errorf("write migration state: %w", err)
	}
	return nil
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
