package verify

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
)

// TestTargetPassesEveryCheck is the suite to run against a deployed
// cluster (see the README): every check area on a vhost of the test's own
// holding a topology of every binding kind, plus the vhosts in WARREN_VHOST,
// plus the drain report in WARREN_DRAIN_REPORT. Nothing may fail, and no
// probe may reach a user queue.
func TestTargetPassesEveryCheck(t *testing.T) {
	e := brokertest.New(t)
	labTopology.declare(t, channels(t, e, e.Source), nil)
	labTopology.declare(t, channels(t, e, e.Target), nil)
	o := options(t, e)
	o.Vhosts = append(o.Vhosts, envList("WARREN_VHOST")...)
	if path := os.Getenv("WARREN_DRAIN_REPORT"); path != "" {
		counts, err := LoadDrainReport(path)
		require.NoError(t, err)
		o.DrainReport = counts
	}

	r := run(t, o)
	require.NoError(t, r.Err())
	for _, a := range []Area{AreaHealth, AreaRoundTrip, AreaRouting} {
		assert.NotEmpty(t, r.Area(a), a)
		for _, c := range r.Area(a) {
			assert.NotEqual(t, Fail, c.Status, c.Name)
		}
	}
	assert.Equal(t, Pass, find(t, r, "round trip "+e.Vhost).Status)
	require.NotNil(t, r.Latency)
	t.Logf("round trips: %s", r.Latency)
	assert.Equal(t, map[string]int{"q-orders": 0, "q-fan": 0, "q-hdr": 0, "q-d": 0}, depths(t, e.Channel(t, e.Target, 0), labTopology.queues))
}
