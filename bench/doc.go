// Package bench measures warren on the local lab against what an operator
// would otherwise do, in one run, under the same load, and prints one
// table:
//
//   - drain: `warren drain` against dynamic shovels declared by hand on each
//     destination queue's leader node (through that node's API, on-confirm,
//     prefetch 1000) and against a raw amqp091-go copier (consume with
//     manual acks, publish with confirms, ack after confirm), at 1, 4 and
//     12 queues of persistent 1 KiB messages (classic source queues,
//     quorum destination queues led by every node in turn);
//   - warren's --parallel at 12 queues, 1, 2 (the default) and 4 shovels
//     per node;
//   - warren's peak RSS while it drains a million messages;
//   - definitions import: `warren definitions import` against a raw
//     POST /api/definitions of the same file (3,000 quorum queues, 6,000
//     bindings).
//
// It is a Go benchmark, so `go test ./...` never runs it; `make bench`
// (scripts/bench.sh) builds warren, brings the lab up and runs it. It takes
// the lab to itself (brokertest.NewDisruptive) so that no test runs beside
// it. Sizes are settings (see settings in bench_test.go). Speed is reported,
// never asserted: the table says how warren compares, the reader judges.
package bench
