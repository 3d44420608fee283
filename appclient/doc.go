// Package appclient is the resilient AMQP client for the Go services that
// talk to the RabbitMQ cluster warren builds. It wraps
// github.com/rabbitmq/amqp091-go with what a single Docker broker never
// asked of a service and a cluster on Kubernetes does: surviving a pod
// deleted or rescheduled, a rolling update of the StatefulSet, a node
// stopped, a connection closed by an operator, a memory alarm, and a
// Service DNS name in place of localhost.
//
// # What it does
//
//   - Dial takes a list of URLs (one per node, or one Service name) and
//     fails over between them; FromBinding and LookupBinding read them
//     from a connection Secret mounted in service-binding layout
//     ($SERVICE_BINDING_ROOT/<name>/{type,host,port,username,password,vhost,uri,ca.crt}).
//   - A lost connection is dialled again with exponential backoff and
//     jitter, capped (Backoff), starting with the next URL, until Close.
//   - Exchanges, queues and bindings declared through Client.Declare are
//     declared again on every new connection before publishers and
//     consumers resume.
//   - Publisher publishes with publisher confirms and returns from Publish
//     only once the broker has confirmed the message. Unconfirmed messages
//     are kept and published again after a reconnect: at least once, never
//     a silent drop. Messages are mandatory: an unroutable one is an error
//     (ErrUnroutable). A message the broker refuses (basic.nack) is
//     published again on a new channel a few times before Publish returns
//     ErrNacked: on RabbitMQ 3.10 a channel that published to a quorum
//     queue whose leader died keeps nacking after the queue has a new
//     leader. While the broker blocks the connection (memory or disk
//     alarm, connection.blocked) Publish waits; it does not fail.
//   - Consumer acks manually after the handler returns nil, with a
//     prefetch, a bounded number of attempts per message and then
//     dead-lettering (see "Redeliveries" below).
//   - Consumer.Shutdown and Publisher.Close are graceful: in-flight
//     handlers finish and ack, nothing unprocessed is acked, and the
//     messages the broker had sent ahead are requeued when the channel
//     closes.
//   - Everything logs through log/slog (Config.Logger); URLs are logged as
//     scheme://user@host:port/vhost, never with the password.
//
// Why not amqp091-go's own recovery (Config.Recovery, since v1.12)? It
// redials the one URL the connection was opened with, at a fixed interval
// (plus up to 500ms of jitter), and gives up after MaxRetryCount attempts
// (5 by default): a node that is away for a minute, or a list of nodes,
// is beyond it. It also leaves publisher confirms to the application. This
// package keeps amqp091-go for the protocol and owns the connection's life.
//
// # Switching a service over
//
// Before, with amqp091-go alone:
//
//	conn, err := amqp.Dial("amqp://guest:guest@localhost:5672/")
//	ch, err := conn.Channel()
//	ch.QueueDeclare("orders", true, false, false, false, nil)
//	ch.PublishWithContext(ctx, "", "orders", false, false, amqp.Publishing{Body: body})
//	msgs, err := ch.Consume("orders", "", true, false, false, false, nil)
//	for d := range msgs { process(d) }
//
// After:
//
//	cfg, err := appclient.LookupBinding("")        // or appclient.Config{URLs: appclient.ParseURLs(os.Getenv("AMQP_URLS"))}
//	cfg.Name = "orders-api"                         // shows in the management UI
//	pubConn, err := appclient.Dial(ctx, cfg)        // one connection to publish...
//	defer pubConn.Close()
//	err = pubConn.Declare(ctx, appclient.Queue{Name: "orders", Type: appclient.Quorum, DeadLetterExchange: "orders.dlx"})
//	pub := pubConn.NewPublisher(appclient.PublisherOptions{})
//	err = pub.Publish(ctx, "", "orders", amqp.Publishing{MessageId: id, DeliveryMode: amqp.Persistent, Body: body})
//
//	subConn, err := appclient.Dial(ctx, cfg)        // ...and one to consume
//	cons, err := subConn.Consume(ctx, "orders", appclient.HandlerFunc(func(ctx context.Context, d amqp.Delivery) error {
//		return process(ctx, d)                   // nil acks; an error retries, then dead-letters
//	}), appclient.ConsumerOptions{Prefetch: 50, Concurrency: 8, MaxAttempts: 5})
//	...
//	cons.Shutdown(ctx)                              // on SIGTERM, before subConn.Close
//
// Checklist:
//
//   - Take the URLs from configuration, never localhost: every node's
//     URL, or the client Service (rabbitmq.<namespace>.svc). With a
//     Service name the client reconnects through it and Kubernetes picks a
//     ready pod.
//   - Give every message a MessageId (Publish sets a random one when it is
//     empty) and make consumers idempotent or deduplicate by it: after a
//     reconnect a message may arrive twice.
//   - Use separate Clients for publishing and consuming. During an alarm
//     RabbitMQ stops reading from connections that publish; a consumer on
//     such a connection could not ack, and queues could not drain.
//   - Declare quorum queues on the cluster (Type: Quorum) with a
//     dead-letter exchange, and set the same Type the queue has: declaring
//     a queue that exists with another type fails (406
//     PRECONDITION_FAILED). For a queue someone else created (warren
//     migrate), declare it Passive.
//   - Handle SIGTERM: Consumer.Shutdown, Publisher.Close, Client.Close, in
//     that order, within the pod's terminationGracePeriodSeconds.
//
// # Redeliveries
//
// A handler error asks for another attempt; Attempt(d) says which one the
// handler is seeing. After ConsumerOptions.MaxAttempts attempts, or at once
// for an error wrapped by Permanent, the message is rejected without
// requeue, which sends it to the queue's dead-letter exchange (or drops it
// when the queue has none: give every queue one). How attempts are counted
// depends on the queue type (ConsumerOptions.QueueType, else the type given
// to Declare, else Classic):
//
//   - Quorum queues count deliveries themselves: the consumer rejects with
//     requeue (basic.reject, which RabbitMQ 4.3+ counts; basic.nack no
//     longer does), the message goes back to the head of the queue, and
//     its x-delivery-count header grows. Set Queue.DeliveryLimit as well:
//     it is the broker's own bound, which also ends the loop of a message
//     that crashes the process before the handler can return (on RabbitMQ
//     3.x every return counts, including the messages a closing channel
//     gives back).
//   - Classic queues keep no count, so a plain requeue would loop for
//     ever. The consumer publishes a copy of the failed message to the
//     same queue (default exchange, routing key = queue name) with the
//     x-appclient-attempts header one higher, waits for the broker's
//     confirm, and only then acks the original. The copy goes to the tail
//     of the queue (order changes), and its routing key is the queue's
//     name: use a fanout dead-letter exchange or Queue.DeadLetterRoutingKey.
//     Should the ack be lost with the connection, both copies are
//     delivered (at least once). A process that crashes before its handler
//     returns is not counted: on classic queues the package bounds handler
//     failures, not crashes.
//
// # Delivery guarantees
//
// Publish returning nil means the broker has the message (in a quorum
// queue: on a majority of nodes). A message is lost only if the caller
// ignores a Publish error. Duplicates arise when a connection breaks
// between the broker storing a message and the client seeing its confirm
// (the publisher sends it again), or between a handler finishing and its
// ack reaching the broker (the broker delivers it again).
package appclient
