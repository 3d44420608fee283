package migrate

import (
	"fmt"

	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/jsonfile"
)

// snapshot is what a migration remembers between runs: the definitions of
// source queues that its own drain deleted.
//
// An auto-delete queue goes away with its last consumer, the shovel, once
// empty. A rerun that planned from a fresh export alone would forget such a
// queue and then find it "unexpected" on the target. So the drain's victims
// (each queue with the bindings into it, as the export before the drain had
// them) are kept and added back to every later plan. Nothing else is kept:
// an object the user removes from the source is gone from the next plan.
type snapshot struct {
	DeletedByDrain *definitions.Definitions `json:"deleted_by_drain"`
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

// deletedQueues picks from src the queues in gone ("vhost\x00name") and the
// bindings whose destination they are.
func deletedQueues(src *definitions.Definitions, gone map[string]bool) *definitions.Definitions {
	out := definitions.New()
	for _, q := range src.Objects(definitions.KindQueue) {
		if gone[q.Vhost()+"\x00"+q.Name()] {
			out.Add(definitions.KindQueue, q.Clone())
		}
	}
	for _, b := range src.Objects(definitions.KindBinding) {
		if b.Str("destination_type") == "queue" && gone[b.Vhost()+"\x00"+b.Str("destination")] {
			out.Add(definitions.KindBinding, b.Clone())
		}
	}
	return out
}
