// Command warren moves a RabbitMQ broker into a highly available cluster on
// Kubernetes: it provisions the cluster (Pulumi), migrates definitions and
// messages, and verifies the result. Run `warren --help` for the commands.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
