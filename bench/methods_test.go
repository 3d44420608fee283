package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/shovel"
)

// prefetch is the hand-made shovels' and the copier's, as warren's default.
const prefetch = shovel.DefaultPrefetch

// warrenRun is one `warren drain` as a user runs it.
type warrenRun struct {
	seconds float64
	maxRSS  int64 // bytes
	report  shovel.Report
}

// note says where the shovels ran.
func (w warrenRun) note() string {
	onLeader, nodes := 0, map[string]int{}
	for _, q := range w.report.Queues {
		if q.Placement == "leader" {
			onLeader++
		}
		nodes[q.Node]++
	}
	note := fmt.Sprintf("%d of %d shovels on their queue's leader, %d nodes, %d at a time", onLeader, len(w.report.Queues), len(nodes), w.report.Parallel)
	if len(w.report.Pauses) > 0 {
		note += fmt.Sprintf("; paused by a lab alarm (%s), %d duplicates counted", strings.Join(w.report.Pauses, "; "), w.report.Duplicates)
	}
	return note
}

// env is the lab's connection settings as `warren lab env` prints them,
// overridden by any WARREN_* variable already set, for the warren binary.
func (l *runner) env() []string {
	env := os.Environ()
	for k, v := range l.Lab.Endpoints() {
		if os.Getenv(k) == "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// warren times the warren binary draining the load, from its start to its
// exit, and reads its peak RSS.
func (l *runner) warren(ld *load, args ...string) warrenRun {
	b := l.b
	cmd := exec.Command(l.s.bin, append([]string{"drain", "--vhost", ld.vhost, "--progress", "none", "-o", "json", "--state-dir", b.TempDir()}, args...)...)
	cmd.Env = l.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	run := warrenRun{seconds: since(start)}
	if err != nil {
		b.Fatalf("warren drain: %v\n%s", err, stderr.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		run.maxRSS = ru.Maxrss * 1024 // Linux reports KiB
	}
	if err := json.Unmarshal(stdout.Bytes(), &run.report); err != nil {
		b.Fatalf("warren drain -o json: %v\n%s", err, stdout.String())
	}
	// Every message moved, and any extra is a duplicate warren counted
	// (a resource alarm on a lab node pauses the drain, which requeues
	// what its shovels had in flight: the note says so).
	if run.report.Lost != 0 || run.report.Messages != len(ld.queues)*ld.perQueue+run.report.Duplicates {
		b.Fatalf("warren drain moved %d messages, want %d; its report:\n%s\nits log:\n%s", run.report.Messages, len(ld.queues)*ld.perQueue, stdout.String(), tail(stderr.String(), 80))
	}
	return run
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// handMade does what an operator would by hand: one dynamic shovel per
// queue, declared through the API of the node that leads its destination
// queue, on-confirm, prefetch 1000, deleting itself once it has moved the
// queue's length. It is timed from the first declaration until every
// destination holds its messages.
func (l *runner) handMade(ld *load) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	b := l.b
	via := make([]*broker.API, len(ld.queues))
	for i, q := range ld.queues {
		info, err := l.TargetAPI.GetQueue(ctx, ld.vhost, q)
		if err != nil {
			b.Fatal(err)
		}
		if via[i] = l.cluster.API(info.Leader); via[i] == nil {
			b.Fatalf("no API for %s, the leader of %s", info.Leader, q)
		}
	}
	src := l.Source.URLWithVhost(0, ld.vhost)
	start := time.Now()
	for i, q := range ld.queues {
		value := map[string]any{
			"src-protocol": "amqp091", "src-uri": src, "src-queue": q, "src-prefetch-count": prefetch,
			"src-delete-after": "queue-length",
			"dest-protocol":    "amqp091", "dest-uri": "amqp:///" + ld.vhost, "dest-queue": q,
			"ack-mode": "on-confirm",
		}
		if err := via[i].PutShovel(ctx, ld.vhost, "by-hand-"+q, value); err != nil {
			b.Fatal(err)
		}
	}
	if err := ld.waitArrived(ctx); err != nil {
		b.Fatal(err)
	}
	return since(start)
}

// copier moves every queue at once with amqp091-go: consume from the
// source with manual acks and prefetch 1000, publish each message with
// confirms to the node that leads its destination queue, and ack it on
// the source once confirmed. Timed from the first connection until every
// message is confirmed and acknowledged.
func (l *runner) copier(ld *load) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	b := l.b
	nodes := make([]int, len(ld.queues))
	for i, q := range ld.queues {
		info, err := l.TargetAPI.GetQueue(ctx, ld.vhost, q)
		if err != nil {
			b.Fatal(err)
		}
		nodes[i] = l.nodeIndex[info.Leader]
	}
	start := time.Now()
	errs := make([]error, len(ld.queues))
	var wg sync.WaitGroup
	for i, q := range ld.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = copyQueue(ctx, l.Source, l.Target, nodes[i], ld.vhost, q, ld.perQueue)
		}()
	}
	wg.Wait()
	secs := since(start)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return secs
}

// copyQueue copies n messages of one queue.
func copyQueue(ctx context.Context, src, dst broker.Endpoint, node int, vhost, queue string, n int) error {
	in, err := src.DialNode(ctx, 0, vhost)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := dst.DialNode(ctx, node, vhost)
	if err != nil {
		return err
	}
	defer out.Close()
	sch, err := in.Channel()
	if err != nil {
		return err
	}
	if err := sch.Qos(prefetch, 0, false); err != nil {
		return err
	}
	pch, err := out.Channel()
	if err != nil {
		return err
	}
	if err := pch.Confirm(false); err != nil {
		return err
	}
	confirms := pch.NotifyPublish(make(chan amqp.Confirmation, prefetch))
	deliveries, err := sch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	// Confirms come in publish order: the acker pairs each with the
	// delivery tag published in that position.
	tags := make(chan uint64, prefetch)
	acked := make(chan error, 1)
	go func() {
		done := 0
		for c := range confirms {
			tag := <-tags
			if !c.Ack {
				acked <- fmt.Errorf("%s: the target refused a message", queue)
				return
			}
			// Ack many at once when no other confirm waits.
			if len(confirms) == 0 || done%100 == 99 {
				if err := sch.Ack(tag, true); err != nil {
					acked <- err
					return
				}
			}
			if done++; done == n {
				if err := sch.Ack(tag, true); err != nil {
					acked <- err
					return
				}
				acked <- nil
				return
			}
		}
		acked <- fmt.Errorf("%s: confirms stopped after %d of %d", queue, done, n)
	}()
	for i := 0; i < n; i++ {
		var d amqp.Delivery
		select {
		case d = <-deliveries:
		case err := <-acked:
			return fmt.Errorf("%s: stopped after %d deliveries: %v", queue, i, err)
		case <-ctx.Done():
			return ctx.Err()
		}
		tags <- d.DeliveryTag
		err := pch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{
			Headers: d.Headers, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding, DeliveryMode: d.DeliveryMode,
			Priority: d.Priority, CorrelationId: d.CorrelationId, ReplyTo: d.ReplyTo, Expiration: d.Expiration,
			MessageId: d.MessageId, Timestamp: d.Timestamp, Type: d.Type, UserId: d.UserId, AppId: d.AppId, Body: d.Body,
		})
		if err != nil {
			return fmt.Errorf("%s: publish: %w", queue, err)
		}
	}
	return <-acked
}
