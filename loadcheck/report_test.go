package loadcheck

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLatencyPercentilesAreNearestRank(t *testing.T) {
	var samples []time.Duration
	for i := 100; i >= 1; i-- { // out of order on purpose
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	l := latencyOf(samples)
	assert.Equal(t, Latency{Samples: 100, P50: 50 * time.Millisecond, P95: 95 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}, l)
	assert.Equal(t, Latency{}, latencyOf(nil))
	one := latencyOf([]time.Duration{7 * time.Millisecond})
	assert.Equal(t, 7*time.Millisecond, one.P50)
	assert.Equal(t, 7*time.Millisecond, one.P99)

	b, err := json.Marshal(l)
	require.NoError(t, err)
	assert.JSONEq(t, `{"samples":100,"p50_ms":50,"p95_ms":95,"p99_ms":99,"max_ms":100}`, string(b))
	var back Latency
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, l, back)
}

// The tally counts each message once however often it arrives, and keeps
// one latency sample per message.
func TestTallyCountsDuplicatesOnce(t *testing.T) {
	tl := &tally{}
	now := time.Now()
	tl.received(0, time.Millisecond, now)
	tl.received(70000, 2*time.Millisecond, now.Add(time.Second))
	tl.received(0, 3*time.Millisecond, now)
	assert.EqualValues(t, 3, tl.consumed.Load())
	assert.EqualValues(t, 2, tl.uniqueCount())
	assert.Equal(t, 2, tl.latency().Samples)
	assert.Equal(t, now.Add(time.Second), tl.lastDelivery())
}

func TestPerSecondStopsAtTheLastEvent(t *testing.T) {
	start := time.Now()
	assert.InDelta(t, 100.0, perSecond(200, start, start.Add(2*time.Second), start.Add(5*time.Second)), 0.001)
	assert.InDelta(t, 40.0, perSecond(200, start, time.Time{}, start.Add(5*time.Second)), 0.001)
	assert.Zero(t, perSecond(0, start, time.Time{}, start.Add(time.Second)))
}

func TestSummaryComparesSidesAndConsumerCounts(t *testing.T) {
	r := &Report{Settings: Settings{Consumers: []int{1, 3, 5}}, Rounds: []Round{
		{Side: Source, Consumers: 1, Throughput: 1000}, {Side: Source, Consumers: 3, Throughput: 1100}, {Side: Source, Consumers: 5, Throughput: 1000},
		{Side: Target, Consumers: 1, Throughput: 500}, {Side: Target, Consumers: 3, Throughput: 1080},
	}}
	r.summarise()
	require.Len(t, r.Comparison, 2, "only counts both sides ran")
	assert.Equal(t, 1, r.Comparison[0].Consumers)
	assert.InDelta(t, 0.5, r.Comparison[0].Ratio, 1e-9)
	assert.False(t, r.Comparison[0].AtLeastAsFast)
	assert.True(t, r.Comparison[1].AtLeastAsFast, "within 5%% of the source counts as keeping up")
	require.Len(t, r.Scaling, 2)
	assert.Equal(t, Scaling{Side: Source, From: 1, To: 5, Ratio: 1}, r.Scaling[0])
	assert.Equal(t, Target, r.Scaling[1].Side)
	assert.Equal(t, 3, r.Scaling[1].To)
	assert.InDelta(t, 2.16, r.Scaling[1].Ratio, 1e-9)
}
