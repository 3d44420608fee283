package appclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/appclient"
)

// The URLs usually come from the environment: every node of the cluster,
// or the client Service.
func ExampleParseURLs() {
	urls := appclient.ParseURLs("amqp://app:secret@rabbitmq-server-0.rabbitmq-nodes:5672/shop, amqp://app:secret@rabbitmq-server-1.rabbitmq-nodes:5672/shop,")
	fmt.Println(len(urls))
	// Output: 2
}

// A connection Secret mounted as files (servicebinding.io layout) gives
// the URLs and, with ca.crt, the TLS settings.
func ExampleFromBinding() {
	dir, _ := os.MkdirTemp("", "binding")
	defer os.RemoveAll(dir)
	for k, v := range map[string]string{
		"type": "rabbitmq", "provider": "warren", "host": "rabbitmq.shop.svc", "port": "5672",
		"username": "orders", "password": "s3cret", "vhost": "shop",
	} {
		_ = os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600)
	}
	cfg, err := appclient.FromBinding(dir)
	if err != nil {
		log.Fatal(err)
	}
	u, _ := amqp.ParseURI(cfg.URLs[0])
	fmt.Println(u.Scheme, u.Host, u.Port, u.Username, u.Vhost, cfg.TLS != nil)
	// Output: amqp rabbitmq.shop.svc 5672 orders shop false
}

// Attempt tells a handler which attempt at a message it is making: one
// more than the failures the broker (x-delivery-count, quorum queues) or
// the consumer (x-appclient-attempts, classic queues) recorded.
func ExampleAttempt() {
	fresh := amqp.Delivery{}
	quorum := amqp.Delivery{Headers: amqp.Table{"x-delivery-count": int64(2)}}
	classic := amqp.Delivery{Headers: amqp.Table{appclient.AttemptsHeader: int32(1)}}
	fmt.Println(appclient.Attempt(fresh), appclient.Attempt(quorum), appclient.Attempt(classic))
	// Output: 1 3 2
}

// A handler wraps an error with Permanent when no retry can help: the
// message is dead-lettered at once.
func ExamplePermanent() {
	err := fmt.Errorf("order 42: %w", appclient.Permanent(errors.New("malformed JSON")))
	fmt.Println(appclient.IsPermanent(err), err)
	// Output: true order 42: malformed JSON
}

// A publishing service: one Client for publishing, topology declared
// through it (and again after every reconnect), and Publish returning once
// the broker has the message.
func ExampleClient_NewPublisher() {
	ctx := context.Background()
	c, err := appclient.Dial(ctx, appclient.Config{
		URLs: appclient.ParseURLs(os.Getenv("AMQP_URLS")),
		Name: "orders-api",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	err = c.Declare(ctx,
		appclient.Exchange{Name: "orders", Kind: amqp.ExchangeTopic},
		appclient.Exchange{Name: "orders.dlx", Kind: amqp.ExchangeFanout},
		appclient.Queue{Name: "orders.created", Type: appclient.Quorum, DeadLetterExchange: "orders.dlx", DeliveryLimit: 5},
		appclient.Binding{Exchange: "orders", Queue: "orders.created", Key: "order.created"},
	)
	if err != nil {
		log.Fatal(err)
	}
	pub := c.NewPublisher(appclient.PublisherOptions{})
	defer pub.Close(ctx)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = pub.Publish(pctx, "orders", "order.created", amqp.Publishing{
		MessageId: "order-42", DeliveryMode: amqp.Persistent, ContentType: "application/json", Body: []byte(`{"id":42}`),
	})
	switch {
	case errors.Is(err, appclient.ErrUnroutable):
		log.Printf("no queue is bound for order.created: %v", err)
	case err != nil:
		log.Printf("order 42 not confirmed: %v", err)
	}
}

// A consuming service: manual acks, a prefetch, bounded attempts, and a
// graceful shutdown on SIGTERM.
func ExampleClient_Consume() {
	ctx := context.Background()
	c, err := appclient.Dial(ctx, appclient.Config{URLs: appclient.ParseURLs(os.Getenv("AMQP_URLS")), Name: "orders-worker"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	handler := appclient.HandlerFunc(func(ctx context.Context, d amqp.Delivery) error {
		log.Printf("order %s, attempt %d", d.MessageId, appclient.Attempt(d))
		return nil // ack
	})
	cons, err := c.Consume(ctx, "orders.created", handler, appclient.ConsumerOptions{
		Prefetch: 50, Concurrency: 8, MaxAttempts: 5, QueueType: appclient.Quorum,
	})
	if err != nil {
		log.Fatal(err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
	sctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	if err := cons.Shutdown(sctx); err != nil {
		log.Print(err)
	}
}

// In a Kubernetes pod with the cluster's connection Secret mounted under
// $SERVICE_BINDING_ROOT, the service needs no URL in its configuration.
func ExampleLookupBinding() {
	cfg, err := appclient.LookupBinding("") // the only binding of type rabbitmq
	if err != nil {
		log.Fatal(err)
	}
	cfg.Name = "billing"
	c, err := appclient.Dial(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}
