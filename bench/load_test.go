package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
)

// body is every message's: 1 KiB.
var body = make([]byte, 1024)

// load is one backlog in a vhost of its own on both sides: classic source
// queues holding perQueue persistent messages each, and empty quorum
// destination queues, queue i declared through target node i mod nodes
// so that every node leads some (as warren's import places them).
type load struct {
	r        *runner
	vhost    string
	queues   []string
	perQueue int
}

// prepare builds a load; lazy makes the source queues lazy, so that a
// large backlog goes to the source's disk instead of its memory.
func (l *runner) prepare(queues, perQueue int, lazy bool) *load {
	b := l.b
	ld := &load{r: l, vhost: brokertest.VhostName(b), perQueue: perQueue}
	l.CreateVhost(b, ld.vhost)
	src := l.channel(l.Source, 0, ld.vhost)
	dst := make([]*amqp.Channel, len(l.Target.AMQP))
	for i := range dst {
		dst[i] = l.channel(l.Target, i, ld.vhost)
	}
	args := amqp.Table{}
	if lazy {
		args["x-queue-mode"] = "lazy"
	}
	for i := 0; i < queues; i++ {
		name := fmt.Sprintf("bench-%02d", i)
		ld.queues = append(ld.queues, name)
		if _, err := src.QueueDeclare(name, true, false, false, false, args); err != nil {
			b.Fatal(err)
		}
		if _, err := dst[i%len(dst)].QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
			b.Fatal(err)
		}
	}
	for _, ch := range append(dst, src) {
		_ = ch.Close()
	}
	start := time.Now()
	ld.publish()
	l.progress("published %d × %d messages in %.1fs", queues, perQueue, since(start))
	// Let the source settle (page out, flush) before anything is timed.
	time.Sleep(2 * time.Second)
	return ld
}

// channel opens a channel on a connection of its own to node i of ep in
// vhost; closing the channel closes the connection.
func (l *runner) channel(ep broker.Endpoint, i int, vhost string) *amqp.Channel {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := ep.DialNode(ctx, i, vhost)
	if err != nil {
		l.b.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		l.b.Fatal(err)
	}
	go func() {
		<-ch.NotifyClose(make(chan *amqp.Error, 1))
		_ = conn.Close()
	}()
	return ch
}

// publish fills the source queues, up to four at a time, each with up to
// 1000 messages awaiting their confirm.
func (ld *load) publish() {
	sem := make(chan struct{}, 4)
	errs := make(chan error, len(ld.queues))
	var wg sync.WaitGroup
	for _, q := range ld.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- ld.publishQueue(q)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			ld.r.b.Fatal(err)
		}
	}
}

func (ld *load) publishQueue(queue string) error {
	ctx := context.Background()
	conn, err := ld.r.Source.DialNode(ctx, 0, ld.vhost)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	window := make([]*amqp.DeferredConfirmation, 0, 1000)
	flush := func() error {
		for _, dc := range window {
			if ok, err := dc.WaitContext(ctx); err != nil || !ok {
				return fmt.Errorf("publish to %s: not confirmed (%v)", queue, err)
			}
		}
		window = window[:0]
		return nil
	}
	for i := 0; i < ld.perQueue; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, ContentType: "application/octet-stream", Body: body})
		if err != nil {
			return fmt.Errorf("publish to %s: %w", queue, err)
		}
		if window = append(window, dc); len(window) == cap(window) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// waitArrived waits until every destination queue holds its messages.
func (ld *load) waitArrived(ctx context.Context) error {
	depths := broker.NewDepths(ld.r.Target)
	defer depths.Close()
	for _, q := range ld.queues {
		for {
			// A quorum queue's leader may answer a passive declare with 0
			// when busy: only a full count ends the wait.
			n, _, err := depths.Depth(ctx, ld.vhost, q)
			if err == nil && n >= ld.perQueue {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s/%s: %d of %d messages arrived (%v)", ld.vhost, q, n, ld.perQueue, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// check fails the benchmark unless every message moved exactly once.
func (ld *load) check() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ld.waitArrived(ctx); err != nil {
		ld.r.b.Fatal(err)
	}
	src, dst := broker.NewDepths(ld.r.Source), broker.NewDepths(ld.r.Target)
	defer src.Close()
	defer dst.Close()
	for _, q := range ld.queues {
		left, _, err := src.Depth(ctx, ld.vhost, q)
		if err != nil {
			ld.r.b.Fatal(err)
		}
		got, _, err := dst.Depth(ctx, ld.vhost, q)
		if err != nil {
			ld.r.b.Fatal(err)
		}
		if left != 0 || got != ld.perQueue {
			ld.r.b.Fatalf("%s/%s: %d left on the source, %d on the target, want 0 and %d", ld.vhost, q, left, got, ld.perQueue)
		}
	}
}

// remove deletes the load's vhosts now, so that the next load starts on
// brokers as empty as this one did.
func (ld *load) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, api := range []*broker.API{ld.r.SourceAPI, ld.r.TargetAPI} {
		if err := api.DeleteVhost(ctx, ld.vhost); err != nil {
			ld.r.b.Fatal(err)
		}
	}
}
