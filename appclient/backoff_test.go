package appclient_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/warrenmq/warren/appclient"
)

func TestBackoffGrowsWithJitterUpToItsCap(t *testing.T) {
	b := appclient.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.5}
	w := b.Waits()
	var got []time.Duration
	for i := 0; i < 12; i++ {
		got = append(got, w.Next())
	}
	// Wait i lies within ±50% of 100ms·2^i, and never above the cap.
	for i, d := range got {
		base := 100 * time.Millisecond << i
		if base > time.Second {
			base = time.Second
		}
		assert.GreaterOrEqual(t, d, base/2, "wait %d", i)
		assert.LessOrEqual(t, d, time.Second, "wait %d is capped", i)
	}
	// Jitter: two sequences differ.
	w2 := b.Waits()
	same := true
	for i := 0; i < 5; i++ {
		if w2.Next() != got[i] {
			same = false
		}
	}
	assert.False(t, same, "two sequences should not be identical")
	w.Reset()
	assert.Less(t, w.Next(), 200*time.Millisecond, "Reset starts over")
}
