// Command report compares the ledgers of the producer and consumer
// examples and prints what the run cost: published (confirmed), consumed,
// lost (confirmed, never consumed), duplicates, longest publish stall and
// longest consume gap. It exits 1 when a message was lost.
//
//	go run ./examples/report -producer producer.ledger -consumer consumer.ledger
//
// Both flags take comma-separated lists, for several processes.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/warrenmq/warren/internal/traffic"
)

func main() {
	producers := flag.String("producer", "producer.ledger", "producer ledgers, comma-separated")
	consumers := flag.String("consumer", "consumer.ledger", "consumer ledgers, comma-separated")
	asJSON := flag.Bool("json", false, "print the figures as JSON")
	flag.Parse()
	fig, err := traffic.CompareFiles(strings.Split(*producers, ","), strings.Split(*consumers, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	if *asJSON {
		out, _ := json.Marshal(fig)
		fmt.Println(string(out))
	} else {
		fmt.Println(fig)
	}
	if fig.Lost > 0 {
		os.Exit(1)
	}
}
