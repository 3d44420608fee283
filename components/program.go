// Package components holds warren's Pulumi program: the RabbitCluster
// component and the stack configuration that drives it.
package components

import (
	"errors"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Program is the Pulumi program that `pulumi up` (through main.go) and
// `warren up` (through the Automation API) both run.
func Program(ctx *pulumi.Context) error {
	return errors.New("the RabbitCluster component is not implemented yet")
}
