package shovel

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Progress receives a drain's progress. Implementations must be safe for
// concurrent use: queues drain in parallel.
type Progress interface {
	// Expect is called once, before any queue starts, with the number of
	// messages the drain expects to move.
	Expect(messages int)
	// Queue starts tracking a queue that has total messages to move.
	Queue(vhost, queue string, total int) QueueProgress
	// Close is called once every queue is done.
	Close()
}

// QueueProgress tracks one queue.
type QueueProgress interface {
	Set(moved int)
	Done(r QueueResult)
}

// NoProgress reports nothing.
type NoProgress struct{}

// Expect does nothing.
func (NoProgress) Expect(int) {}

// Queue returns a tracker that does nothing.
func (NoProgress) Queue(string, string, int) QueueProgress { return noQueue{} }

// Close does nothing.
func (NoProgress) Close() {}

type noQueue struct{}

func (noQueue) Set(int)          {}
func (noQueue) Done(QueueResult) {}

// Bars draws a bar per queue and one for the total, with messages moved,
// rate and ETA, for a terminal. mpb redraws in place and handles bars that
// come and go while others run. Nothing is drawn until the drain starts.
// Bars is also an io.Writer: log lines written through it while bars are
// drawn appear above them instead of tearing them.
type Bars struct {
	w        io.Writer
	mu       sync.Mutex
	p        *mpb.Progress
	total    *mpb.Bar
	expected int64
	sum      map[*mpb.Bar]int
}

// NewBars draws on w, which should be a terminal.
func NewBars(w io.Writer) *Bars { return &Bars{w: w, sum: map[*mpb.Bar]int{}} }

// counters decorates a bar with its counts, rate and ETA. (One option
// only: a second AppendDecorators replaces the first.)
func counters(format string) mpb.BarOption {
	return mpb.AppendDecorators(
		decor.CountersNoUnit(format),
		decor.EwmaSpeed(nil, " %.0f msg/s", 30),
		decor.OnComplete(decor.Name(" ETA "), " done"),
		decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30), ""),
	)
}

// start creates the bars on first use; b.mu must be held.
func (b *Bars) start() {
	if b.p != nil {
		return
	}
	b.p = mpb.New(mpb.WithOutput(b.w), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithWidth(40))
	b.total = b.p.AddBar(b.expected, mpb.BarPriority(1<<30),
		mpb.PrependDecorators(decor.Name("total", decor.WCSyncWidthR)),
		counters(" %d / %d msgs"))
}

// Expect sets the total bar's size.
func (b *Bars) Expect(messages int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expected = int64(messages)
	b.start()
	b.total.SetTotal(b.expected, false)
}

// Queue adds a bar for one queue.
func (b *Bars) Queue(vhost, queue string, total int) QueueProgress {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.start()
	bar := b.p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name(vhost+"/"+queue, decor.WCSyncWidthR)),
		counters(" %d / %d"))
	b.sum[bar] = 0
	return &barQueue{b: b, bar: bar, last: time.Now()}
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

// Close completes the total bar and waits for the last redraw.
func (b *Bars) Close() {
	b.mu.Lock()
	prog, total := b.p, b.total
	b.p, b.total = nil, nil
	b.mu.Unlock()
	if prog == nil {
		return
	}
	total.SetTotal(-1, true)
	prog.Wait()
}

type barQueue struct {
	b    *Bars
	bar  *mpb.Bar
	last time.Time
}

func (q *barQueue) Set(moved int) {
	now := time.Now()
	q.b.mu.Lock()
	delta := moved - q.b.sum[q.bar]
	q.b.sum[q.bar] = moved
	total := q.b.total
	q.b.mu.Unlock()
	if delta != 0 {
		q.bar.EwmaSetCurrent(int64(moved), now.Sub(q.last))
		if total != nil {
			total.EwmaIncrBy(delta, now.Sub(q.last))
		}
	}
	q.last = now
}

func (q *barQueue) Done(r QueueResult) {
	q.Set(r.Moved)
	if r.Status == StatusDrained {
		q.bar.SetTotal(-1, true)
	} else {
		q.bar.Abort(false)
	}
}

// LogProgress writes a line per queue every interval, for logs and CI where
// bars would only add noise.
type LogProgress struct {
	Logger   *slog.Logger
	Interval time.Duration
}

// Queue logs the queue's start and returns its tracker.
func (l LogProgress) Queue(vhost, queue string, total int) QueueProgress {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	iv := l.Interval
	if iv <= 0 {
		iv = 5 * time.Second
	}
	logger.Info("drain started", "vhost", vhost, "queue", queue, "messages", total)
	return &logQueue{log: logger, every: iv, vhost: vhost, queue: queue, total: total, start: time.Now(), next: time.Now().Add(iv)}
}

// Expect logs the drain's size.
func (l LogProgress) Expect(messages int) {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.Info("drain expects", "messages", messages)
}

// Close does nothing.
func (LogProgress) Close() {}

type logQueue struct {
	mu           sync.Mutex
	log          *slog.Logger
	every        time.Duration
	vhost, queue string
	total, moved int
	start, next  time.Time
}

func (q *logQueue) Set(moved int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moved = moved
	if time.Now().Before(q.next) {
		return
	}
	q.next = time.Now().Add(q.every)
	el := time.Since(q.start).Seconds()
	rate := float64(moved) / el
	eta := "unknown"
	if rate > 0 && q.total > moved {
		eta = time.Duration(float64(q.total-moved) / rate * float64(time.Second)).Round(time.Second).String()
	}
	q.log.Info("draining", "vhost", q.vhost, "queue", q.queue, "moved", moved, "of", q.total,
		"rate", fmt.Sprintf("%.0f msg/s", rate), "eta", eta)
}

func (q *logQueue) Done(r QueueResult) {
	// r.Seconds is only added up after this call; this run's time is ours.
	q.log.Info("drain finished", "vhost", r.Vhost, "queue", r.Queue, "status", r.Status, "moved", r.Moved, "of", r.SourceBefore,
		"seconds", fmt.Sprintf("%.1f", time.Since(q.start).Seconds()))
}
