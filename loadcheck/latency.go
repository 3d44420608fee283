package loadcheck

import (
	"encoding/json"
	"slices"
	"time"
)

// Latency summarises end-to-end times: from a producer handing a message
// to Publish to a consumer receiving it, both on this machine's clock.
type Latency struct {
	Samples int
	P50     time.Duration
	P95     time.Duration
	P99     time.Duration
	Max     time.Duration
}

// latencyJSON is Latency in milliseconds.
type latencyJSON struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50_ms"`
	P95     float64 `json:"p95_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

// MarshalJSON writes the times in milliseconds.
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(latencyJSON{l.Samples, ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Latency) UnmarshalJSON(b []byte) error {
	var j latencyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d := func(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
	*l = Latency{j.Samples, d(j.P50), d(j.P95), d(j.P99), d(j.Max)}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// latencyOf computes nearest-rank percentiles; it sorts samples in place.
func latencyOf(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(samples))+0.999999) - 1
		return samples[max(0, min(i, len(samples)-1))]
	}
	return Latency{Samples: len(samples), P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: samples[len(samples)-1]}
}
