package loadcheck

import "time"

// Report is what Run measured, round by round.
type Report struct {
	Settings Settings `json:"settings"`
	// Rounds are in the order they ran: the source's, then the target's,
	// each by ascending consumer count.
	Rounds []Round `json:"rounds"`
	// Comparison sets the target against the source at each consumer count
	// both sides completed.
	Comparison []Comparison `json:"comparison"`
	// Scaling says, per side, what going from the fewest to the most
	// consumers did to throughput.
	Scaling []Scaling `json:"scaling"`
}

// Settings are the options a report was made with.
type Settings struct {
	Vhost     string  `json:"vhost"`
	Producers int     `json:"producers"`
	Consumers []int   `json:"consumers"`
	Size      int     `json:"size_bytes"`
	Rate      int     `json:"rate"` // 0: as fast as confirms allow
	Seconds   float64 `json:"duration_seconds"`
	Count     int     `json:"count"`
	QueueType string  `json:"queue_type"` // empty: each side's default
	InFlight  int     `json:"in_flight"`
	Prefetch  int     `json:"prefetch"`
	WorkMS    float64 `json:"work_ms"`
}

// Round is one side measured with one consumer count.
type Round struct {
	Side      string `json:"side"`   // source or target
	Broker    string `json:"broker"` // the endpoint, without credentials
	Consumers int    `json:"consumers"`
	Producers int    `json:"producers"`
	Queue     string `json:"queue"`
	// QueueType is the type the queue had (the vhost's default when the
	// option left it open).
	QueueType string  `json:"queue_type"`
	Seconds   float64 `json:"seconds"`
	// Published counts the messages handed to the publishers; Confirmed
	// those the broker confirmed; Failed those a publisher gave up on
	// (Error says why, for the first); Republished the publications again
	// after a lost connection or a nack.
	Published   int64 `json:"published"`
	Confirmed   int64 `json:"confirmed"`
	Failed      int64 `json:"failed"`
	Republished int64 `json:"republished"`
	// Consumed counts distinct messages received; Duplicates the
	// deliveries of a message received before (after a reconnect).
	Consumed   int64 `json:"consumed"`
	Duplicates int64 `json:"duplicates"`
	// Throughput is distinct messages consumed per second, from the
	// round's start to its last delivery; PublishRate confirmed messages
	// per second, to the last confirm. Seconds is the whole round.
	Throughput  float64 `json:"throughput_msg_s"`
	PublishRate float64 `json:"publish_rate_msg_s"`
	Latency     Latency `json:"latency"`
	// Lag is the messages still queued when the round ended.
	Lag   int64  `json:"lag"`
	Error string `json:"error"` // empty when the round went well
}

// Comparison is the target against the source at one consumer count.
type Comparison struct {
	Consumers        int     `json:"consumers"`
	SourceThroughput float64 `json:"source_msg_s"`
	TargetThroughput float64 `json:"target_msg_s"`
	// Ratio is target over source throughput: 1 or more means the cluster
	// kept up with the old broker.
	Ratio         float64 `json:"ratio"`
	SourceP99MS   float64 `json:"source_p99_ms"`
	TargetP99MS   float64 `json:"target_p99_ms"`
	AtLeastAsFast bool    `json:"at_least_as_fast"`
}

// Scaling is one side's throughput with its fewest and most consumers.
type Scaling struct {
	Side string `json:"side"`
	From int    `json:"from_consumers"`
	To   int    `json:"to_consumers"`
	// Ratio is throughput at To over throughput at From.
	Ratio float64 `json:"ratio"`
}

func settingsOf(o Options) Settings {
	return Settings{Vhost: o.Vhost, Producers: o.Producers, Consumers: o.rounds(), Size: o.Size, Rate: o.Rate,
		Seconds: o.Duration.Seconds(), Count: o.Count, QueueType: o.QueueType, InFlight: o.InFlight, Prefetch: o.Prefetch,
		WorkMS: ms(o.Work)}
}

// summarise fills in Comparison and Scaling from the rounds.
func (r *Report) summarise() {
	r.Comparison, r.Scaling = []Comparison{}, []Scaling{}
	by := map[string]map[int]Round{}
	for _, rd := range r.Rounds {
		if by[rd.Side] == nil {
			by[rd.Side] = map[int]Round{}
		}
		by[rd.Side][rd.Consumers] = rd
	}
	for _, c := range r.Settings.Consumers {
		s, okS := by[Source][c]
		t, okT := by[Target][c]
		if !okS || !okT {
			continue
		}
		cmp := Comparison{Consumers: c, SourceThroughput: s.Throughput, TargetThroughput: t.Throughput,
			SourceP99MS: ms(s.Latency.P99), TargetP99MS: ms(t.Latency.P99)}
		if s.Throughput > 0 {
			cmp.Ratio = t.Throughput / s.Throughput
		}
		// Within 5% counts as keeping up: rounds of the same settings
		// vary that much from run to run.
		cmp.AtLeastAsFast = t.Throughput >= 0.95*s.Throughput
		r.Comparison = append(r.Comparison, cmp)
	}
	for _, side := range []string{Source, Target} {
		var first, last *Round
		for _, c := range r.Settings.Consumers {
			if rd, ok := by[side][c]; ok {
				if first == nil {
					first = &rd
				}
				last = &rd
			}
		}
		if first == nil || first == last {
			continue
		}
		sc := Scaling{Side: side, From: first.Consumers, To: last.Consumers}
		if first.Throughput > 0 {
			sc.Ratio = last.Throughput / first.Throughput
		}
		r.Scaling = append(r.Scaling, sc)
	}
}

// Snapshot is a round's counts while it runs.
type Snapshot struct {
	Elapsed   time.Duration
	Published int64
	Confirmed int64
	Consumed  int64 // deliveries so far
}
