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

func (NoProgress) Queue(string, string, int) QueueProgress { return noQueue{} }
func (NoProgress) Close()                                  {}

type noQueue struct{}

func (noQueue) Set(int)          {}
func (noQueue) Done(QueueResult) {}

// Bars draws a bar per queue and one for the total, with messages moved,
// rate and ETA, for a terminal. mpb redraws in place and handles bars that
// come and go while others run.
type Bars struct {
	p     *mpb.Progress
	total *mpb.Bar
	mu    sync.Mutex
	sum   map[*mpb.Bar]int
	all   int64 // messages to move over every queue tracked so far
}

// NewBars draws on w, which should be a terminal.
func NewBars(w io.Writer) *Bars {
	p := mpb.New(mpb.WithOutput(w), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithWidth(40))
	total := p.AddBar(0, mpb.BarPriority(1<<30),
		mpb.PrependDecorators(decor.Name("total", decor.WCSyncWidthR)),
		mpb.AppendDecorators(
			decor.CountersNoUnit(" %d / %d msgs"),
			decor.EwmaSpeed(nil, " %.0f msg/s", 30),
			decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30), " done"),
		))
	return &Bars{p: p, total: total, sum: map[*mpb.Bar]int{}}
}

func (b *Bars) Queue(vhost, queue string, total int) QueueProgress {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.all += int64(total)
	b.total.SetTotal(b.all, false)
	bar := b.p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name(vhost+"/"+queue, decor.WCSyncWidthR)),
		mpb.AppendDecorators(
			decor.CountersNoUnit(" %d / %d"),
			decor.EwmaSpeed(nil, " %.0f msg/s", 30),
			decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30), " done"),
		))
	b.sum[bar] = 0
	return &barQueue{b: b, bar: bar, started: time.Now(), last: time.Now()}
}

func (b *Bars) Close() {
	b.total.SetTotal(-1, true)
	b.p.Wait()
}

type barQueue struct {
	b       *Bars
	bar     *mpb.Bar
	started time.Time
	last    time.Time
}

func (q *barQueue) Set(moved int) {
	now := time.Now()
	q.b.mu.Lock()
	delta := moved - q.b.sum[q.bar]
	q.b.sum[q.bar] = moved
	q.b.mu.Unlock()
	if delta != 0 {
		q.bar.EwmaSetCurrent(int64(moved), now.Sub(q.last))
		q.b.total.EwmaIncrBy(delta, now.Sub(q.last))
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
	q.log.Info("drain finished", "vhost", r.Vhost, "queue", r.Queue, "status", r.Status, "moved", r.Moved, "of", r.SourceBefore, "seconds", fmt.Sprintf("%.1f", r.Seconds))
}
