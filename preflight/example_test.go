package preflight_test

import (
	"fmt"

	"github.com/warrenmq/warren/preflight"
)

// A command gathers every finding, about its flags and both brokers, and
// stops while any failed; the class to fix first decides the exit code.
func ExampleReport() {
	var r preflight.Report
	r.Add(
		preflight.Passf("target HTTP API", "user admin, tags [administrator]"),
		preflight.Failf(preflight.Unfit, "target nodes", "--expect-nodes 5, but the target runs 3 node(s)"),
		preflight.Warnf("tls files", "no URL is amqps:// or https://, so the TLS files are not used"),
		preflight.Failf(preflight.Usage, "flags", "--parallel 0: want 1 to 1000"),
	)
	err := r.Err()
	fmt.Println(preflight.ClassOf(err))
	fmt.Println(err)
	// Output:
	// usage
	// preflight: 2 check(s) failed; nothing was changed. Fix each and run the same command again:
	//   target nodes: --expect-nodes 5, but the target runs 3 node(s)
	//   flags: --parallel 0: want 1 to 1000
}
