package loadcheck

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/guptarohit/asciigraph"
)

// Chart draws throughput (msg/s) against the consumer count, one line per
// side, width columns wide. With color it uses ANSI colors and
// asciigraph's legend, for a terminal; without, a distinct character per
// side and a plain legend. It returns "" when the report has fewer than
// two consumer counts: one point makes no line.
func Chart(r *Report, width int, color bool) string {
	counts := r.Settings.Consumers
	if len(counts) < 2 || len(r.Rounds) == 0 {
		return ""
	}
	width = max(width, 2*len(counts))
	lo, hi := float64(counts[0]), float64(counts[len(counts)-1])
	var (
		series  [][]float64
		legends []string
	)
	for _, name := range []string{Source, Target} {
		var xs, ys []float64
		for _, rd := range r.Rounds {
			if rd.Side == name {
				xs, ys = append(xs, float64(rd.Consumers)), append(ys, rd.Throughput)
			}
		}
		if len(xs) == 0 {
			continue
		}
		series = append(series, resample(xs, ys, lo, hi, width))
		legends = append(legends, name)
	}
	opts := []asciigraph.Option{
		asciigraph.Height(10), asciigraph.LowerBound(0),
		asciigraph.XAxisRange(lo, hi), asciigraph.XAxisTickCount(min(len(counts), width)),
		asciigraph.XAxisValueFormatter(func(v float64) string { return fmt.Sprintf("%.0f", v) }),
		asciigraph.YAxisValueFormatter(func(v float64) string { return fmt.Sprintf("%.0f", v) }),
		asciigraph.Caption("throughput (msg/s) by consumer count"),
	}
	chars := []asciigraph.CharSet{asciigraph.DefaultCharSet, asciigraph.CreateCharSet("•")}[:len(series)]
	if color {
		opts = append(opts, asciigraph.SeriesColors(asciigraph.Blue, asciigraph.Green), asciigraph.SeriesLegends(legends...))
	} else {
		opts = append(opts, asciigraph.SeriesChars(chars...))
	}
	out := asciigraph.PlotMany(series, opts...)
	if !color {
		var parts []string
		for i, l := range legends {
			parts = append(parts, chars[i].Horizontal+" "+l)
		}
		out += "\n\n" + strings.Repeat(" ", 10) + strings.Join(parts, "   ")
	}
	return out + "\n"
}

// resample turns points (xs ascending) into width values spread evenly
// over [lo, hi], joining the points with straight lines; outside the
// points it is NaN, which asciigraph leaves blank.
func resample(xs, ys []float64, lo, hi float64, width int) []float64 {
	out := make([]float64, width)
	for i := range out {
		x := lo + (hi-lo)*float64(i)/float64(width-1)
		j, found := slices.BinarySearch(xs, x)
		switch {
		case found:
			out[i] = ys[j]
		case j == 0 || j == len(xs):
			out[i] = math.NaN()
		default:
			f := (x - xs[j-1]) / (xs[j] - xs[j-1])
			out[i] = ys[j-1] + f*(ys[j]-ys[j-1])
		}
	}
	return out
}
