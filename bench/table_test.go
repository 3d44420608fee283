package bench

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// row is one line of the table.
type row struct {
	section, load, method string
	seconds               float64
	messages              int
	// vsHand and vsFastest are warren's speed over the hand-made shovels'
	// and over the fastest method's at the same load (above 1: faster).
	vsHand, vsFastest float64
	// vsRaw is warren's import time over a raw POST's (below 1: faster).
	vsRaw float64
	rss   int64
	note  string
}

// table is the benchmark's one output.
type table struct {
	header, footer []string
	rows           []row
}

func (t *table) String() string {
	var b strings.Builder
	for _, h := range t.header {
		fmt.Fprintln(&b, h)
	}
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nWHAT\tLOAD\tMETHOD\tSECONDS\tMSG/S\tSPEED VS HAND-MADE\tSPEED VS FASTEST\tNOTE")
	last := ""
	for _, r := range t.rows {
		if r.section != last && last != "" {
			fmt.Fprintln(w, "\t\t\t\t\t\t\t")
		}
		last = r.section
		rate, vsHand, vsFastest := "", "", ""
		if r.messages > 0 && r.seconds > 0 {
			rate = fmt.Sprintf("%.0f", float64(r.messages)/r.seconds)
		}
		if r.vsHand > 0 {
			vsHand = fmt.Sprintf("%.2f×", r.vsHand)
		}
		if r.vsFastest > 0 {
			vsFastest = fmt.Sprintf("%.2f×", r.vsFastest)
		}
		note := r.note
		if r.rss > 0 {
			note = fmt.Sprintf("peak RSS %.1f MB; %s", float64(r.rss)/1e6, note)
		}
		if r.vsRaw > 0 {
			note = fmt.Sprintf("%.2f× the raw POST's time; %s", r.vsRaw, note)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\n", r.section, r.load, r.method, r.seconds, rate, vsHand, vsFastest, note)
	}
	w.Flush()
	for _, f := range t.footer {
		fmt.Fprintln(&b, f)
	}
	return b.String()
}
