package brokertest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
)

// PublishIDs publishes n persistent messages of size bytes to queue through
// ch, with publisher confirms, each with its own message id (prefix-0,
// prefix-1, ...), and returns the ids. Fault tests count by these ids.
func PublishIDs(t testing.TB, ch *amqp.Channel, queue, prefix string, n, size int) []string {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	body := make([]byte, size)
	ids := make([]string, n)
	ctx := context.Background()
	const window = 1000
	var pending []*amqp.DeferredConfirmation
	wait := func() {
		for _, c := range pending {
			ok, err := c.WaitContext(ctx)
			if err != nil || !ok {
				t.Fatalf("publish to %s: confirmed %v, %v", queue, ok, err)
			}
		}
		pending = pending[:0]
	}
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false,
			amqp.Publishing{MessageId: ids[i], DeliveryMode: amqp.Persistent, Body: body})
		if err != nil {
			t.Fatalf("publish to %s: %v", queue, err)
		}
		pending = append(pending, c)
		if len(pending) == window {
			wait()
		}
	}
	wait()
	return ids
}

// Census takes every message out of the queues of vhost on ep and counts
// how often each message id was seen. It reads until each queue is empty.
func Census(t testing.TB, ep broker.Endpoint, vhost string, queues []string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn, err := ep.DialNode(ctx, 0, vhost)
	if err != nil {
		t.Fatalf("census: %v", err)
	}
	defer conn.Close()
	seen := map[string]int{}
	for _, q := range queues {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatalf("census: %v", err)
		}
		if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
			// A queue that is gone (an auto-delete source queue) holds nothing.
			if strings.Contains(err.Error(), "NOT_FOUND") {
				continue
			}
			t.Fatalf("census of %s: %v", q, err)
		}
		if err := ch.Qos(2000, 0, false); err != nil {
			t.Fatalf("census: %v", err)
		}
		deliveries, err := ch.Consume(q, "census", false, false, false, false, nil)
		if err != nil {
			t.Fatalf("census of %s: %v", q, err)
		}
		// Done after two quiet seconds with the queue reading empty twice:
		// a quorum queue's leader may answer a passive declare with a
		// spurious 0 once.
		empty := 0
		for empty < 2 {
			select {
			case d := <-deliveries:
				seen[d.MessageId]++
				if err := d.Ack(false); err != nil {
					t.Fatalf("census ack: %v", err)
				}
				empty = 0
				continue
			case <-time.After(time.Second):
			}
			st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			if err != nil {
				t.Fatalf("census of %s: %v", q, err)
			}
			if st.Messages == 0 {
				empty++
			} else {
				empty = 0
			}
		}
		_ = ch.Close()
	}
	return seen
}

// Tally is a fault test's verdict, by message id.
type Tally struct {
	Expected int
	// Lost ids were published and are on neither side.
	Lost int
	// Duplicates counts every extra copy of an id.
	Duplicates int
	// Unknown counts messages whose id was never published.
	Unknown int
	// Missing lists a few lost ids, for the failure message.
	Missing []string
}

// TallyIDs compares the published ids with what the censuses saw.
func TallyIDs(published []string, censuses ...map[string]int) Tally {
	total := map[string]int{}
	for _, c := range censuses {
		for id, n := range c {
			total[id] += n
		}
	}
	tl := Tally{Expected: len(published)}
	want := map[string]bool{}
	for _, id := range published {
		want[id] = true
		switch n := total[id]; {
		case n == 0:
			tl.Lost++
			if len(tl.Missing) < 5 {
				tl.Missing = append(tl.Missing, id)
			}
		case n > 1:
			tl.Duplicates += n - 1
		}
	}
	for id, n := range total {
		if !want[id] {
			tl.Unknown += n
		}
	}
	sort.Strings(tl.Missing)
	return tl
}
