// Command producer is an example service that publishes through appclient
// at a steady rate, with a unique message id per message, and records
// every id the broker confirmed in a ledger (internal/traffic). With the
// consumer example and the report command it measures what a fault or a
// switch of brokers costs: lost, duplicated, longest stall.
//
// Configuration, all from the environment:
//
//	AMQP_URLS         amqp[s]:// URLs, comma-separated (or a service binding:
//	SERVICE_BINDING_ROOT, AMQP_BINDING; see appclient.FromEnv)
//	AMQP_QUEUE        queue to publish to, through the default exchange (warren-demo)
//	AMQP_QUEUE_TYPE   quorum (default), classic, or passive to only check it exists
//	RATE              messages per second (200)
//	COUNT             stop after this many confirmed messages (0: until SIGTERM)
//	IN_FLIGHT         messages awaiting their confirm at once (16)
//	LEDGER            ledger file, appended to (producer.ledger)
//	CONNECTION_NAME   connection name in the management UI (warren-example-producer)
//
// SIGTERM or Ctrl-C stops it gracefully: no new message, the ones in
// flight are confirmed, then it prints a summary and exits 0. Restarted,
// it appends to the same ledger; message ids stay unique (a random run id
// plus a sequence).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/appclient"
	"github.com/warrenmq/warren/internal/traffic"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("producer failed", "err", err)
		os.Exit(1)
	}
}

// summary is printed on stdout, as JSON, when the producer stops.
type summary struct {
	RunID     string `json:"run_id"`
	Confirmed int64  `json:"confirmed"`
	Failed    int64  `json:"failed"`
	appclient.PublisherStats
}

func run(log *slog.Logger) error {
	rate, err := envInt("RATE", 200)
	if err != nil {
		return err
	}
	count, err := envInt("COUNT", 0)
	if err != nil {
		return err
	}
	inFlight, err := envInt("IN_FLIGHT", 16)
	if err != nil {
		return err
	}
	if rate <= 0 || inFlight <= 0 || count < 0 {
		return fmt.Errorf("RATE=%d, IN_FLIGHT=%d, COUNT=%d: want positive numbers (COUNT may be 0)", rate, inFlight, count)
	}
	queue := envOr("AMQP_QUEUE", "warren-demo")
	decl, err := queueDeclaration(queue, envOr("AMQP_QUEUE_TYPE", "quorum"))
	if err != nil {
		return err
	}
	cfg, err := appclient.FromEnv()
	if err != nil {
		return err
	}
	cfg.Name, cfg.Logger = envOr("CONNECTION_NAME", "warren-example-producer"), log

	ledger, err := traffic.Open(envOr("LEDGER", "producer.ledger"))
	if err != nil {
		return err
	}
	defer ledger.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	c, err := appclient.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Declare(ctx, decl); err != nil {
		return err
	}
	pub := c.NewPublisher(appclient.PublisherOptions{MaxInFlight: inFlight})

	runID := appclient.NewMessageID()[:8]
	log.Info("publishing", "queue", queue, "rate", rate, "run_id", runID)
	var confirmed, failed atomic.Int64
	seqs := make(chan int64)
	var workers sync.WaitGroup
	for w := 0; w < inFlight; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for seq := range seqs {
				id := fmt.Sprintf("%s-%08d", runID, seq)
				// No deadline: a message is confirmed, or refused for good.
				err := pub.Publish(context.Background(), "", queue, amqp.Publishing{
					MessageId: id, DeliveryMode: amqp.Persistent, Timestamp: time.Now(),
					Headers: amqp.Table{"seq": seq, "run": runID}, Body: []byte(id),
				})
				if err != nil {
					failed.Add(1)
					log.Error("message not confirmed", "message_id", id, "err", err)
					continue
				}
				if err := ledger.Confirmed(id); err != nil {
					log.Error("ledger", "err", err)
				}
				if n := confirmed.Add(1); count > 0 && n >= int64(count) {
					stop()
				}
			}
		}()
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	report := time.NewTicker(5 * time.Second)
	defer report.Stop()
	sent := int64(0)
loop:
	for count == 0 || sent < int64(count) {
		select {
		case <-ctx.Done():
			break loop
		case <-report.C:
			log.Info("progress", "confirmed", confirmed.Load(), "failed", failed.Load())
			continue
		case <-tick.C:
		}
		select {
		case seqs <- sent:
			sent++
		case <-ctx.Done():
			break loop
		}
	}
	close(seqs)
	log.Info("stopping: waiting for the messages in flight")
	workers.Wait()
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pub.Close(cctx); err != nil {
		log.Error("close publisher", "err", err)
	}
	out, _ := json.Marshal(summary{RunID: runID, Confirmed: confirmed.Load(), Failed: failed.Load(), PublisherStats: pub.Stats()})
	fmt.Println(string(out))
	return nil
}

func queueDeclaration(name, typ string) (appclient.Queue, error) {
	switch typ {
	case "quorum":
		return appclient.Queue{Name: name, Type: appclient.Quorum}, nil
	case "classic":
		return appclient.Queue{Name: name, Type: appclient.Classic}, nil
	case "passive":
		return appclient.Queue{Name: name, Passive: true}, nil
	}
	return appclient.Queue{}, fmt.Errorf("AMQP_QUEUE_TYPE=%q: want quorum, classic or passive", typ)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) (int, error) {
	v := os.Getenv(k)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a number", k, v)
	}
	return n, nil
}
