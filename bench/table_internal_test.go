package bench

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTableShowsRatiosAndNotes(t *testing.T) {
	tb := table{header: []string{"head"}, footer: []string{"foot"}, rows: []row{
		{section: "drain", load: "4 × 30000", method: methodWarren, seconds: 20, messages: 120000, vsHand: 1.05, vsFastest: 0.95, note: "4 of 4 shovels on their queue's leader"},
		{section: "drain", load: "4 × 30000", method: methodHand, seconds: 21, messages: 120000},
		{section: "rss", load: "10 × 100000", method: methodWarren, seconds: 100, messages: 1000000, rss: 25_400_000},
		{section: "import", load: "3000 quorum queues", method: "warren definitions import", seconds: 110, vsRaw: 1.1},
	}}
	out := tb.String()
	lines := strings.Split(out, "\n")
	assert.Equal(t, "head", lines[0])
	assert.Contains(t, out, "6000   1.05×")
	assert.Contains(t, out, "0.95×")
	assert.Contains(t, out, "peak RSS 25.4 MB")
	assert.Contains(t, out, "1.10× the raw POST's time")
	assert.Contains(t, out, "10000  ", "1,000,000 messages in 100 s")
	assert.True(t, strings.HasSuffix(out, "foot\n"))
}
