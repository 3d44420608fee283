package appclient_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/appclient"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/internal/traffic"
)

// testLogger logs through t.Log until the test ends (a log call from a
// goroutine after that would panic).
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// urls returns the AMQP URLs of the given nodes of ep (all when none are
// given), pointed at the test's vhost.
func urls(ep broker.Endpoint, nodes ...int) []string {
	if len(nodes) == 0 {
		for i := range ep.AMQP {
			nodes = append(nodes, i)
		}
	}
	var out []string
	for _, i := range nodes {
		out = append(out, ep.AMQP[i].String())
	}
	return out
}

// dial connects a client named name (unique within the test's vhost) and
// closes it when the test ends.
func dial(t testing.TB, name string, us []string) *appclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := appclient.Dial(ctx, appclient.Config{URLs: us, Name: name, Logger: testLogger(t),
		Backoff: appclient.Backoff{Initial: 50 * time.Millisecond, Max: 2 * time.Second}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// flow is a steady publisher and a consumer that record every confirmed
// and every received message id in ledgers.
type flow struct {
	t          testing.TB
	pub        *appclient.Publisher
	cons       *appclient.Consumer
	pubLedger  string
	consLedger string
	stopPub    context.CancelFunc
	pubDone    sync.WaitGroup
	pubErrs    atomic.Int64
	lastErr    atomic.Pointer[error]
	confirmed  atomic.Int64
	received   atomic.Int64
}

// startFlow publishes to exchange/key at about rate messages a second
// (from 8 goroutines, so several messages are in flight) with pubC, and
// consumes queue with consC.
func startFlow(t testing.TB, pubC, consC *appclient.Client, exchange, key, queue string, rate int) *flow {
	t.Helper()
	dir := t.TempDir()
	f := &flow{t: t, pubLedger: filepath.Join(dir, "producer.ledger"), consLedger: filepath.Join(dir, "consumer.ledger")}
	cl, err := traffic.Open(f.consLedger)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.cons, err = consC.Consume(ctx, queue, appclient.HandlerFunc(func(_ context.Context, d amqp.Delivery) error {
		f.received.Add(1)
		return cl.Received(d.MessageId)
	}), appclient.ConsumerOptions{Prefetch: 50, Concurrency: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.cons.Shutdown(context.Background()); _ = cl.Close() })

	pl, err := traffic.Open(f.pubLedger)
	require.NoError(t, err)
	f.pub = pubC.NewPublisher(appclient.PublisherOptions{})
	pctx, stop := context.WithCancel(context.Background())
	f.stopPub = stop
	ids := make(chan string)
	f.pubDone.Add(1)
	go func() {
		defer f.pubDone.Done()
		defer close(ids)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
			}
			select {
			case ids <- fmt.Sprintf("m-%07d", seq):
			case <-pctx.Done():
				return
			}
		}
	}()
	for w := 0; w < 8; w++ {
		f.pubDone.Add(1)
		go func() {
			defer f.pubDone.Done()
			for id := range ids {
				// No deadline: a publish must ride out every fault here.
				err := f.pub.Publish(context.Background(), exchange, key, amqp.Publishing{MessageId: id, DeliveryMode: amqp.Persistent, Body: []byte(id)})
				if err != nil {
					f.pubErrs.Add(1)
					f.lastErr.Store(&err)
					continue
				}
				f.confirmed.Add(1)
				if err := pl.Confirmed(id); err != nil {
					f.lastErr.Store(&err)
					f.pubErrs.Add(1)
				}
			}
		}()
	}
	t.Cleanup(func() { stop(); f.pubDone.Wait(); _ = pl.Close() })
	return f
}

// lastError is the latest publish error, or nil.
func (f *flow) lastError() error {
	if e := f.lastErr.Load(); e != nil {
		return *e
	}
	return nil
}

// waitConfirmed waits until n more messages have been confirmed.
func (f *flow) waitConfirmed(n int64, d time.Duration) {
	f.t.Helper()
	target := f.confirmed.Load() + n
	brokertest.Eventually(f.t, d, func() error {
		if got := f.confirmed.Load(); got < target {
			return fmt.Errorf("%d messages confirmed, waiting for %d (%d publishes failed, last error: %v)", got, target, f.pubErrs.Load(), f.lastError())
		}
		return nil
	})
}

// finish stops publishing, waits until the consumer has received every
// confirmed message (or 60s pass), stops it, and returns the figures.
func (f *flow) finish() traffic.Figures {
	f.t.Helper()
	f.stopPub()
	f.pubDone.Wait()
	require.NoError(f.t, f.pub.Close(context.Background()))
	deadline := time.Now().Add(60 * time.Second)
	var fig traffic.Figures
	for {
		var err error
		fig, err = traffic.CompareFiles([]string{f.pubLedger}, []string{f.consLedger})
		require.NoError(f.t, err)
		if fig.Lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.NoError(f.t, f.cons.Shutdown(context.Background()))
	if n := f.pubErrs.Load(); n > 0 {
		f.t.Errorf("%d publishes failed; last error: %v", n, f.lastError())
	}
	return fig
}
