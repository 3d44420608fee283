package traffic_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/traffic"
)

func TestCompareCountsLossesDuplicatesAndGaps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	produced := []traffic.Event{
		{At: at(0), Kind: traffic.Start, ID: "1"},
		{At: at(10), Kind: traffic.Confirmed, ID: "a"},
		{At: at(20), Kind: traffic.Confirmed, ID: "b"},
		{At: at(520), Kind: traffic.Confirmed, ID: "c"}, // a 500ms stall
		{At: at(530), Kind: traffic.Confirmed, ID: "d"},
	}
	consumed := []traffic.Event{
		{At: at(15), Kind: traffic.Received, ID: "a"},
		{At: at(25), Kind: traffic.Received, ID: "b"},
		{At: at(30), Kind: traffic.Received, ID: "b"},
		{At: at(1030), Kind: traffic.Received, ID: "d"}, // a 1s gap
		{At: at(1040), Kind: traffic.Received, ID: "x"}, // never confirmed
	}
	f := traffic.Compare(produced, consumed)
	assert.Equal(t, 4, f.Published)
	assert.Equal(t, 4, f.Consumed)
	assert.Equal(t, 5, f.Deliveries)
	assert.Equal(t, 1, f.Lost)
	assert.Equal(t, []string{"c"}, f.LostIDs)
	assert.Equal(t, 1, f.Duplicates)
	assert.Equal(t, 1, f.Unconfirmed)
	assert.Equal(t, 500*time.Millisecond, f.LongestPublishStall)
	assert.Equal(t, time.Second, f.LongestConsumeGap)
	assert.Contains(t, f.String(), "lost 1")
}

// A restarted process appends to its ledger: nothing recorded before is lost.
func TestLedgerAppendsAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "producer.ledger")
	for _, id := range []string{"run1-1", "run2-1"} {
		l, err := traffic.Open(path)
		require.NoError(t, err)
		require.NoError(t, l.Confirmed(id))
		require.NoError(t, l.Close())
	}
	events, err := traffic.Read(path)
	require.NoError(t, err)
	var kinds []traffic.Kind
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	assert.Equal(t, []traffic.Kind{traffic.Start, traffic.Confirmed, traffic.Stop, traffic.Start, traffic.Confirmed, traffic.Stop}, kinds)

	l, err := traffic.Open(path)
	require.NoError(t, err)
	assert.Error(t, l.Confirmed("has blank"), "an id with a blank would corrupt the ledger")
	require.NoError(t, l.Close())
}

func TestReadRejectsACorruptLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.ledger")
	require.NoError(t, os.WriteFile(path, []byte("123 confirmed\n"), 0o644))
	_, err := traffic.Read(path)
	assert.ErrorContains(t, err, "line 1")
	_, err = traffic.Read(filepath.Join(t.TempDir(), "missing"))
	assert.Error(t, err)
}
