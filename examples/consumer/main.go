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
	"os/signal"
	"strconv"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/appclient"
	"github.com/warrenmq/warren/internal/traffic"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("consumer failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	prefetch, err := envInt("PREFETCH", 50)
	if err != nil {
		return err
	}
	concurrency, err := envInt("CONCURRENCY", 4)
	if err != nil {
		return err
	}
	delay, err := time.ParseDuration(envOr("HANDLER_DELAY", "0s"))
	if err != nil {
		return fmt.Errorf("HANDLER_DELAY: %w", err)
	}
	queue := envOr("AMQP_QUEUE", "warren-demo")
	var decl appclient.Queue
	switch typ := envOr("AMQP_QUEUE_TYPE", "quorum"); typ {
	case "quorum":
		decl = appclient.Queue{Name: queue, Type: appclient.Quorum}
	case "classic":
		decl = appclient.Queue{Name: queue, Type: appclient.Classic}
	case "passive":
		decl = appclient.Queue{Name: queue, Passive: true}
	default:
		return fmt.Errorf("AMQP_QUEUE_TYPE=%q: want quorum, classic or passive", typ)
	}
	cfg, err := appclient.FromEnv()
	if err != nil {
		return err
	}
	cfg.Name, cfg.Logger = envOr("CONNECTION_NAME", "warren-example-consumer"), log

	ledger, err := traffic.Open(envOr("LEDGER", "consumer.ledger"))
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
	handler := appclient.HandlerFunc(func(ctx context.Context, d amqp.Delivery) error {
		if delay > 0 {
			time.Sleep(delay)
		}
		// Recorded before the ack: a message is never acked unrecorded.
		return ledger.Received(d.MessageId)
	})
	cons, err := c.Consume(ctx, queue, handler, appclient.ConsumerOptions{Prefetch: prefetch, Concurrency: concurrency})
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
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number", k, v)
	}
	return n, nil
}
