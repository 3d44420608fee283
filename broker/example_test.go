package broker_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/warrenmq/warren/broker"
)

// Each pod of a StatefulSet is a node named after its DNS name, so a
// template reaches every node's own HTTP API.
func ExampleNodeAPIURL() {
	fmt.Println(broker.NodeAPIURL("http://{host}:15672", "rabbit@rabbitmq-server-1.rabbitmq-nodes.prod"))
	fmt.Println(broker.NodeAPIURL("https://{host}.example.com:15671", "rabbit@node-2"))
	// Output:
	// http://rabbitmq-server-1.rabbitmq-nodes.prod:15672
	// https://node-2.example.com:15671
}

// RabbitMQ 3.10 reports a user's tags as a comma-separated string, later
// versions as a list; both decode to the same Tags.
func ExampleTags() {
	var old, current broker.User
	_ = json.Unmarshal([]byte(`{"name":"admin","tags":"administrator,monitoring"}`), &old)
	_ = json.Unmarshal([]byte(`{"name":"admin","tags":["administrator","monitoring"]}`), &current)
	fmt.Println(old.Tags, current.Tags, old.Tags.Has("administrator"))
	// Output: [administrator monitoring] [administrator monitoring] true
}

// Every call goes through one policy: a timeout per attempt sized to the
// call, and retries for idempotent calls within a budget.
func ExampleDefaultPolicy() {
	p := broker.DefaultPolicy(15 * time.Second)
	fmt.Println("one object:", p.Quick, "a whole broker's list:", p.List, "an import:", p.Bulk)
	fmt.Println("retries for:", p.Retry, "or, when nothing listens:", p.RefusedRetry)
	fmt.Println("without retries:", p.NoRetry().Retry)
	// Output:
	// one object: 15s a whole broker's list: 1m0s an import: 2m30s
	// retries for: 1m0s or, when nothing listens: 5s
	// without retries: 0s
}
