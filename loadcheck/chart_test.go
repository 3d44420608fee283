package loadcheck

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResampleJoinsPointsWithLines(t *testing.T) {
	got := resample([]float64{1, 3, 5}, []float64{10, 30, 20}, 1, 5, 5)
	assert.Equal(t, []float64{10, 20, 30, 25, 20}, got)
	gap := resample([]float64{3, 5}, []float64{1, 2}, 1, 5, 3)
	assert.True(t, math.IsNaN(gap[0]), "no line left of the first point")
	assert.Equal(t, []float64{1, 2}, gap[1:])
}

func TestChartPlotsBothSides(t *testing.T) {
	r := &Report{Settings: Settings{Consumers: []int{1, 3, 5}}, Rounds: []Round{
		{Side: Source, Consumers: 1, Throughput: 900}, {Side: Source, Consumers: 3, Throughput: 950}, {Side: Source, Consumers: 5, Throughput: 940},
		{Side: Target, Consumers: 1, Throughput: 400}, {Side: Target, Consumers: 3, Throughput: 600}, {Side: Target, Consumers: 5, Throughput: 650},
	}}
	plain := Chart(r, 40, false)
	require.NotEmpty(t, plain)
	assert.NotContains(t, plain, "\x1b[", "no ANSI codes without color")
	assert.Contains(t, plain, "─ source")
	assert.Contains(t, plain, "• target")
	assert.Contains(t, plain, "throughput (msg/s) by consumer count")
	assert.Contains(t, plain, "950", "the y axis reaches the highest throughput")
	lines := strings.Split(plain, "\n")
	var axis string
	for _, l := range lines {
		if strings.Contains(l, "1") && strings.Contains(l, "5") && strings.TrimSpace(l)[0] == '1' {
			axis = l
		}
	}
	assert.Contains(t, axis, "3", "x axis labels every consumer count: %q", plain)

	colored := Chart(r, 40, true)
	assert.Contains(t, colored, "\x1b[")
	assert.Contains(t, colored, "source")

	r.Settings.Consumers = []int{3}
	assert.Empty(t, Chart(r, 40, false), "one consumer count makes no line")
}
