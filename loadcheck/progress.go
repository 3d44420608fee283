package loadcheck

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Progress receives a load check's progress, one round at a time.
type Progress interface {
	// Round starts tracking a round; goal is its duration or count.
	Round(side string, consumers int, goal Goal) RoundProgress
	// Close is called once the last round is done.
	Close()
}

// RoundProgress tracks one round. Update is called a few times a second.
type RoundProgress interface {
	Update(s Snapshot)
	Done(r Round)
}

// Goal is when a round ends: after Duration, or once Count messages
// arrived.
type Goal struct {
	Duration time.Duration
	Count    int
}

// NoProgress reports nothing.
type NoProgress struct{}

// Round returns a tracker that does nothing.
func (NoProgress) Round(string, int, Goal) RoundProgress { return noRound{} }

// Close does nothing.
func (NoProgress) Close() {}

type noRound struct{}

func (noRound) Update(Snapshot) {}
func (noRound) Done(Round)      {}

// Bars draws a bar per round on a terminal: elapsed time against the
// duration, or messages consumed against the count, with the counts and
// the consume rate beside it. Bars is also an io.Writer: log lines written
// through it appear above the bars instead of tearing them.
type Bars struct {
	w  io.Writer
	mu sync.Mutex
	p  *mpb.Progress
}

// NewBars draws on w, which should be a terminal.
func NewBars(w io.Writer) *Bars { return &Bars{w: w} }

// Round adds a bar for the round.
func (b *Bars) Round(side string, consumers int, goal Goal) RoundProgress {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p == nil {
		b.p = mpb.New(mpb.WithOutput(b.w), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithWidth(30))
	}
	total := int64(goal.Count)
	if goal.Duration > 0 {
		total = goal.Duration.Milliseconds()
	}
	r := &barRound{goal: goal}
	r.bar = b.p.AddBar(total,
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("%s, %d consumer(s)", side, consumers), decor.WCSyncWidthR)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return r.text() })))
	return r
}

// Write prints p above the bars while they are drawn, else straight to w.
func (b *Bars) Write(p []byte) (int, error) {
	b.mu.Lock()
	prog := b.p
	b.mu.Unlock()
	if prog != nil {
		return prog.Write(p)
	}
	return b.w.Write(p)
}

// Close waits for the last redraw.
func (b *Bars) Close() {
	b.mu.Lock()
	prog := b.p
	b.p = nil
	b.mu.Unlock()
	if prog != nil {
		prog.Wait()
	}
}

type barRound struct {
	goal Goal
	bar  *mpb.Bar
	last atomic.Pointer[Snapshot]
}

func (r *barRound) text() string {
	s := r.last.Load()
	if s == nil {
		return " starting"
	}
	return " " + s.String()
}

func (r *barRound) Update(s Snapshot) {
	r.last.Store(&s)
	// A bar that reaches its total completes and is drawn no more: stop
	// one short, so that Done's final counts are the ones left on screen.
	if r.goal.Duration > 0 {
		r.bar.SetCurrent(min(s.Elapsed.Milliseconds(), r.goal.Duration.Milliseconds()-1))
	} else {
		r.bar.SetCurrent(min(s.Consumed, int64(r.goal.Count)-1))
	}
}

func (r *barRound) Done(rd Round) {
	s := Snapshot{Elapsed: time.Duration(rd.Seconds * float64(time.Second)), Published: rd.Published, Confirmed: rd.Confirmed, Consumed: rd.Consumed + rd.Duplicates}
	r.last.Store(&s)
	if rd.Error != "" {
		r.bar.Abort(false)
		return
	}
	r.bar.SetTotal(-1, true)
}

// String renders a snapshot for a bar or a log line.
func (s Snapshot) String() string {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Consumed) / s.Elapsed.Seconds()
	}
	return fmt.Sprintf("published %d, confirmed %d, consumed %d (%.0f msg/s)", s.Published, s.Confirmed, s.Consumed, rate)
}

// LogProgress logs a line per round every Interval (default 5s), for logs
// and CI where bars would only add noise.
type LogProgress struct {
	Logger   *slog.Logger
	Interval time.Duration
}

// Round logs the round's start and returns its tracker.
func (l LogProgress) Round(side string, consumers int, goal Goal) RoundProgress {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	iv := l.Interval
	if iv <= 0 {
		iv = 5 * time.Second
	}
	logger = logger.With("side", side, "consumers", consumers)
	logger.Info("load check round started", "goal", goal.String())
	return &logRound{log: logger, every: iv, next: time.Now().Add(iv)}
}

// Close does nothing.
func (LogProgress) Close() {}

// String renders the goal for a log line.
func (g Goal) String() string {
	if g.Duration > 0 {
		return g.Duration.String()
	}
	return fmt.Sprintf("%d messages", g.Count)
}

type logRound struct {
	mu    sync.Mutex
	log   *slog.Logger
	every time.Duration
	next  time.Time
}

func (l *logRound) Update(s Snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Now().Before(l.next) {
		return
	}
	l.next = time.Now().Add(l.every)
	l.log.Info("load check running", "elapsed", s.Elapsed.Round(time.Second), "published", s.Published,
		"confirmed", s.Confirmed, "consumed", s.Consumed)
}

func (l *logRound) Done(r Round) {
	l.log.Info("load check round finished", "seconds", fmt.Sprintf("%.1f", r.Seconds), "consumed", r.Consumed,
		"throughput", fmt.Sprintf("%.0f msg/s", r.Throughput), "p99_ms", ms(r.Latency.P99), "lag", r.Lag)
}
