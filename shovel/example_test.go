package shovel_test

import (
	"fmt"

	"github.com/warrenmq/warren/shovel"
)

// A drain shovel publishes through the default exchange to the queue's
// name, so it never declares a missing destination, and acknowledges a
// message on the source only once the target confirmed it.
func ExampleSpec_Value() {
	v := shovel.Spec{Vhost: "shop", Queue: "orders", SrcURIs: []string{"amqp://old-broker/shop"}, DestURIs: []string{shovel.DirectURI("shop")}}.Value()
	fmt.Println(shovel.Name("orders"))
	fmt.Println(v["src-queue"], v["dest-uri"], fmt.Sprintf("%q", v["dest-exchange"]), v["dest-exchange-key"])
	fmt.Println(v["ack-mode"], v["src-prefetch-count"])
	_, declares := v["dest-queue"]
	fmt.Println("declares the destination:", declares)
	// Output:
	// warren.drain.orders
	// orders [amqp:///shop] "" orders
	// on-confirm 1000
	// declares the destination: false
}

// Options are checked before anything is contacted.
func ExampleOptions_Validate() {
	err := shovel.Options{Parallel: -1, Vhosts: []string{""}}.Validate()
	fmt.Println(err)
	// Output:
	// invalid drain options: parallel must be at least 1
	// an empty vhost name: name the vhosts, or leave --vhost out for all of them
}
