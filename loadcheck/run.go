package loadcheck

import (
	"context"
)

// Run measures the source, then the target, once per consumer count, with
// the same settings, and returns what it measured. It checks the options
// and both brokers first, and creates nothing when a check fails. A round
// that cannot run stops the load check: the report then holds the rounds
// before it, and the error says what happened. Each round's queue is
// deleted when it ends, also when ctx ends.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	sides, err := preflight(ctx, opts)
	if err != nil {
		return nil, err
	}
	rep := &Report{Settings: settingsOf(opts)}
	defer rep.summarise()
	defer opts.Progress.Close()
	for _, s := range sides {
		for _, c := range opts.rounds() {
			rd, err := round(ctx, opts, s, c)
			rep.Rounds = append(rep.Rounds, rd)
			if err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}
