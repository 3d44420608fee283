package components_test

import (
	"fmt"

	"github.com/warrenmq/warren/components"
)

// ParseConfig validates a stack's settings; the Names it yields are the
// ones every Kubernetes object and certificate uses.
func ExampleParseConfig() {
	cfg, err := components.ParseConfig(components.MapLookup(map[string]string{
		"warren:name":      "orders",
		"warren:namespace": "mq",
		"warren:replicas":  "3",
	}, nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	n := cfg.Names()
	fmt.Println(n.StatefulSet(), n.HeadlessService(), n.NodeName(0))

	_, err = components.ParseConfig(components.MapLookup(map[string]string{"warren:replicas": "0"}, nil))
	fmt.Println(err)
	// Output:
	// orders-server orders-nodes rabbit@orders-server-0.orders-nodes.mq
	// invalid stack configuration:
	//   warren:replicas = "0": a cluster needs at least 1 node (3 for high availability)
}
