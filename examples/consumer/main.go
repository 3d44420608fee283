// Command consumer is an example service that consumes a queue through
// appclient with manual acks and records every message id it received
// (and so how often) in a ledger (internal/traffic), before acking it.
//
// Configuration, all from the environment:
//
//	AMQP_URLS         amqp[s]:// URLs, comma-separated (or a service binding:
//	SERVICE_BINDING_ROOT, AMQP_BINDING; see appclient.FromEnv)
//	AMQP_QUEUE        queue to consume (warren-demo)
//	AMQP_QUEUE_TYPE   quorum (default), classic, or passive to only check it exists
//	PREFETCH          unacked messages the broker sends ahead (50)
//	CONCURRENCY       handlers at once (4)
//	HANDLER_DELAY     time each message takes to process (0), e.g. 10ms
//	LEDGER            ledger file, appended to (consumer.ledger)
//	CONNECTION_NAME   connection name in the management UI (warren-example-consumer)
//
// SIGTERM or Ctrl-C stops it gracefully: running handlers finish and ack,
// prefetched messages go back to the queue, and it exits 0.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/appclient"
	"github.com/warrenmq/warren/examples/internal/service"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("consumer failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	prefetch, err := service.EnvInt("PREFETCH", 50)
	if err != nil {
		return err
	}
	concurrency, err := service.EnvInt("CONCURRENCY", 4)
	if err != nil {
		return err
	}
	if prefetch <= 0 || concurrency <= 0 {
		return fmt.Errorf("PREFETCH=%d, CONCURRENCY=%d: want positive numbers", prefetch, concurrency)
	}
	delay, err := time.ParseDuration(service.EnvOr("HANDLER_DELAY", "0s"))
	if err != nil {
		return fmt.Errorf("HANDLER_DELAY: %w", err)
	}
	svc, err := service.Start(log, "warren-example-consumer", "consumer.ledger")
	if err != nil {
		return err
	}
	defer svc.Close()
	ctx, queue, ledger := svc.Ctx, svc.Queue.Name, svc.Ledger
	handler := appclient.HandlerFunc(func(ctx context.Context, d amqp.Delivery) error {
		if delay > 0 {
			time.Sleep(delay)
		}
		// Recorded before the ack: a message is never acked unrecorded.
		return ledger.Received(d.MessageId)
	})
	cons, err := svc.Client.Consume(ctx, queue, handler, appclient.ConsumerOptions{Prefetch: prefetch, Concurrency: concurrency})
	if err != nil {
		return err
	}
	log.Info("consuming", "queue", queue, "prefetch", prefetch, "concurrency", concurrency)
	report := time.NewTicker(5 * time.Second)
	defer report.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-cons.Done():
			return fmt.Errorf("the consumer stopped on its own")
		case <-report.C:
			st := cons.Stats()
			log.Info("progress", "acked", st.Acked, "delivered", st.Delivered)
		}
	}
	log.Info("stopping: letting running handlers finish")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cons.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
	}
	out, _ := json.Marshal(cons.Stats())
	fmt.Println(string(out))
	return nil
}
