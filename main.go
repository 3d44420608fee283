// The Pulumi program of this project: `pulumi up -s dev` runs it through the
// Go language host. `warren up` runs the same program inline through the
// Automation API.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/warrenmq/warren/components"
)

func main() {
	pulumi.Run(components.Program)
}
