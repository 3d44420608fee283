package definitions_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
)

// The whole first half of a cutover: export the source, plan for the
// target, check, import, and verify.
func Example() {
	ctx := context.Background()
	src, _ := broker.ParseEndpoint("source", "amqp://guest:guest@127.0.0.1:5700/", "http://127.0.0.1:15700", broker.TLSOptions{})
	tgt, _ := broker.ParseEndpoint("target", "amqp://admin:admin@127.0.0.1:5701/", "http://127.0.0.1:15701", broker.TLSOptions{})
	srcAPI, _ := src.NewAPI()
	tgtAPI, _ := tgt.NewAPI()

	defs, err := definitions.Export(ctx, srcAPI)
	if err != nil {
		log.Fatal(err) // definitions.ClassOf(err) == ClassPreflight: unreachable, login, not RabbitMQ
	}
	plan, err := definitions.NewPlan(defs, definitions.Options{
		Incompatible: definitions.IncompatibleKeepClassic, // priority and lazy queues stay classic
		Mirroring:    definitions.MirroringRewrite,        // ha-* keys go
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range plan.Changes {
		fmt.Println(c.Kind, c.ID, c.Action, c.Reason)
	}
	if _, err := plan.Check(ctx, tgtAPI); err != nil {
		log.Fatal(err) // ClassPreflight or ClassConflict; nothing changed
	}
	res, err := definitions.Import(ctx, tgtAPI, plan)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Total(), "created,", res.Identical, "identical")

	got, _ := definitions.Export(ctx, tgtAPI)
	for _, d := range definitions.Compare(plan.Want(), got) {
		fmt.Println(d)
	}
}

// A single-vhost file (GET /api/definitions/{vhost}) names no vhost: Load
// maps it onto one, and the plan says so along with every other change.
func ExampleNewPlan() {
	file := `{"rabbit_version":"3.10.8",
	  "queues":[
	    {"name":"orders","durable":true,"auto_delete":false,"arguments":{}},
	    {"name":"jobs","durable":true,"auto_delete":false,"arguments":{"x-max-priority":10}},
	    {"name":"cache","durable":false,"auto_delete":false,"arguments":{}}],
	  "exchanges":[],"bindings":[],"policies":[],"parameters":[]}`
	defs, err := definitions.Load(strings.NewReader(file), "shop")
	if err != nil {
		log.Fatal(err)
	}
	plan, err := definitions.NewPlan(defs, definitions.Options{KeepClassic: []string{"shop/jobs"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range plan.Changes {
		fmt.Printf("%s %s: %s (%s)\n", c.Kind, c.ID, c.Action, c.Detail)
	}
	// Output:
	// vhost shop: map-vhost (every object goes into vhost shop)
	// vhost shop: rewrite (default queue type none → quorum)
	// vhost shop: warn (classic: jobs)
	// queue shop/cache: keep-classic (non-durable)
	// queue shop/jobs: keep-classic (--keep-classic shop/jobs)
	// queue shop/orders: convert (classic → quorum)
}
