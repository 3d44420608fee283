package components_test

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

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

// NewRabbitCluster embeds the cluster in any Pulumi program; Program is
// exactly this, reading the config from the stack. Here it runs against
// Pulumi's mocks, as the package's tests do.
func ExampleNewRabbitCluster() {
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		cfg, err := components.ParseConfig(components.MapLookup(map[string]string{
			"warren:namespace":     "mq",
			"warren:erlangCookie":  "an-erlang-cookie-of-some-length",
			"warren:adminPassword": "s3cret",
		}, map[string]bool{"warren:erlangCookie": true, "warren:adminPassword": true}))
		if err != nil {
			return err
		}
		if err := cfg.CheckSecrets(ctx.Stack()); err != nil {
			return err
		}
		cluster, err := components.NewRabbitCluster(ctx, cfg.Name, cfg)
		if err != nil {
			return err
		}
		ctx.Export("amqpUrl", cluster.AMQPURL.ApplyT(func(u string) string {
			fmt.Println(u)
			return u
		}))
		return nil
	}, pulumi.WithMocks("project", "dev", echoMocks{}))
	fmt.Println(err)
	// Output:
	// amqp://rabbitmq.mq.svc:5672/
	// <nil>
}

// echoMocks stands in for the engine: every resource gets its inputs back.
type echoMocks struct{}

func (echoMocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	return args.Name + "-id", args.Inputs, nil
}

func (echoMocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) { return args.Args, nil }
