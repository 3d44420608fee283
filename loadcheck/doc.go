// Package loadcheck answers two questions before and after a cutover: is
// the cluster at least as fast as the old broker, and does adding
// consumers help?
//
// Run measures the source and then the target with the same settings: for
// each consumer count it declares a queue of its own
// (warren.bench.<random>, with x-expires as a safety net), starts that many
// consumers and the producers, publishes for a duration or a count of
// messages, and reports throughput, end-to-end latency percentiles (each
// message carries its send time; the consumer subtracts it from its
// receive time, both on this machine's clock), the consumer lag at the end
// (messages still queued), and the published, confirmed and consumed
// counts. Then it deletes the queue. It touches no other queue.
//
// Producers and consumers are appclient's, the client the services use:
// publisher confirms with republication after a lost connection, manual
// acks with a prefetch. So the figures are what a service on that client
// sees, not what a client tuned for benchmarks would.
//
// A source still serving applications is refused (ErrLiveClients) unless
// Options.AllowLive: the load would slow them down, and their traffic
// would skew the figures.
package loadcheck
