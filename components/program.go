// Package components holds warren's Pulumi program: the RabbitCluster
// component and the stack configuration that drives it.
package components

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Program is the Pulumi program that `pulumi up` (through main.go) and
// `warren up` (through the Automation API) both run.
func Program(ctx *pulumi.Context) error { return run(ctx, Options{}) }

// Options vary how the program runs without changing what it declares.
type Options struct {
	// RenderDir, when set, makes the Kubernetes provider write the manifests
	// as YAML into this directory instead of applying them to a cluster.
	// Secrets are written there in plain text.
	RenderDir string
}

// NewProgram returns the program with opts; NewProgram(Options{}) is Program.
func NewProgram(opts Options) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error { return run(ctx, opts) }
}

func run(ctx *pulumi.Context, opts Options) error {
	cfg, err := LoadConfig(ctx)
	if err != nil {
		return err
	}
	var ropts []pulumi.ResourceOption
	if opts.RenderDir != "" {
		p, err := kubernetes.NewProvider(ctx, "render", &kubernetes.ProviderArgs{
			RenderYamlToDirectory: pulumi.String(opts.RenderDir),
		})
		if err != nil {
			return fmt.Errorf("render provider: %w", err)
		}
		ropts = append(ropts, pulumi.Provider(p))
	}
	if cfg.ServiceMonitor && opts.RenderDir == "" {
		// Rendering has no cluster to ask; a preview or an update fails here,
		// naming the CRD, before any object is created.
		crd, err := CheckServiceMonitorCRD(ctx)
		if err != nil {
			return err
		}
		ropts = append(ropts, pulumi.DependsOn([]pulumi.Resource{crd}))
	}
	c, err := NewRabbitCluster(ctx, cfg.Name, cfg, ropts...)
	if err != nil {
		return err
	}
	ctx.Export("statefulSetName", c.StatefulSetName)
	ctx.Export("clientServiceName", c.ClientServiceName)
	ctx.Export("headlessServiceName", c.HeadlessServiceName)
	ctx.Export("amqpUrl", c.AMQPURL)
	ctx.Export("managementUrl", c.ManagementURL)
	ctx.Export("adminSecretName", c.AdminSecretName)
	ctx.Export("erlangCookieSecretName", c.ErlangCookieSecretName)
	ctx.Export("tlsSecretName", c.TLSSecretName)
	ctx.Export("appSecretName", c.AppSecretName)
	ctx.Export("namespace", pulumi.String(cfg.Namespace))
	return nil
}
