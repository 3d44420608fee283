package verify_test

import (
	"context"
	"fmt"
	"os"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/verify"
)

// Verify a cluster reached over TLS, and print the checks that failed.
func ExampleRun() {
	target, err := broker.ParseEndpoint("target",
		"amqps://admin:secret@rabbit-0.example:5671/,amqps://admin:secret@rabbit-1.example:5671/,amqps://admin:secret@rabbit-2.example:5671/",
		"https://rabbit.example:15671", broker.TLSOptions{CAFile: "ca.pem"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	report, err := verify.Run(context.Background(), verify.Options{
		Target:     target,
		ServiceURL: "amqps://rabbit.example:5671/", // the client Service, with the target's credentials
		Areas:      []verify.Area{verify.AreaHealth, verify.AreaRoundTrip, verify.AreaRouting},
	})
	if err != nil { // bad options, such as an unreadable CA file
		fmt.Fprintln(os.Stderr, err)
		return
	}
	for _, c := range report.Failures() {
		fmt.Printf("%s: %s\n", c.Name, c.Detail)
	}
	if report.Latency != nil {
		fmt.Println("round trips:", report.Latency)
	}
}
