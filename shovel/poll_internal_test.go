package shovel

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPollIntervalStretchesOnlyWhileMuchIsLeft(t *testing.T) {
	d := &drainer{opts: Options{Poll: 250 * time.Millisecond}}
	r := &QueueResult{SourceBefore: 100_000}

	r.Moved = 0
	assert.Equal(t, 250*time.Millisecond, d.pollInterval(r, 0, time.Second), "nothing moved yet: no rate to go by")

	r.Moved = 10_000 // 10k in 2s: 90k left take 18s
	assert.Equal(t, time.Second, d.pollInterval(r, 10_000, 2*time.Second), "capped at a second")

	r.Moved = 98_000 // 2k left at 5k/s: 0.4s
	assert.Equal(t, 250*time.Millisecond, d.pollInterval(r, 98_000, 19600*time.Millisecond), "about to finish: Poll")

	r.Moved = 90_000 // 10k left at 5k/s: 2s, a fifth of it
	assert.Equal(t, 400*time.Millisecond, d.pollInterval(r, 90_000, 18*time.Second))

	r.Moved, r.Live = 10_000, true
	assert.Equal(t, 250*time.Millisecond, d.pollInterval(r, 10_000, 2*time.Second), "live traffic: no end to predict")

	d.opts.Poll = 3 * time.Second
	r.Live = false
	assert.Equal(t, 3*time.Second, d.pollInterval(r, 10_000, 2*time.Second), "a Poll above a second is kept")
}
