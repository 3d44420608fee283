package components

import (
	"fmt"

	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// TypeToken is the RabbitCluster component's type, in the project's own
// namespace.
const TypeToken = "warren:rabbitmq:RabbitCluster"

// Ports RabbitMQ listens on.
const (
	PortAMQP          = 5672
	PortAMQPS         = 5671
	PortManagement    = 15672
	PortManagementTLS = 15671
	PortPrometheus    = 15692
	PortPrometheusTLS = 15691
	PortEPMD          = 4369
	PortDistribution  = 25672
)

// RabbitCluster is a highly available RabbitMQ cluster on Kubernetes: a
// StatefulSet with its Services, configuration, secrets, TLS, RBAC,
// disruption budget, NetworkPolicy, ServiceMonitor and the applications'
// binding Secret, built one child per file like rabbitmq/cluster-operator's
// internal/resource.
type RabbitCluster struct {
	pulumi.ResourceState

	// StatefulSetName, ClientServiceName and HeadlessServiceName name the
	// Kubernetes objects.
	StatefulSetName     pulumi.StringOutput `pulumi:"statefulSetName"`
	ClientServiceName   pulumi.StringOutput `pulumi:"clientServiceName"`
	HeadlessServiceName pulumi.StringOutput `pulumi:"headlessServiceName"`
	// AMQPURL is the client Service's in-cluster AMQP(S) URL, without
	// credentials (they are in AdminSecretName).
	AMQPURL pulumi.StringOutput `pulumi:"amqpUrl"`
	// ManagementURL is the in-cluster management API/UI URL.
	ManagementURL pulumi.StringOutput `pulumi:"managementUrl"`
	// AdminSecretName holds keys username and password.
	AdminSecretName pulumi.StringOutput `pulumi:"adminSecretName"`
	// ErlangCookieSecretName holds the Erlang cookie.
	ErlangCookieSecretName pulumi.StringOutput `pulumi:"erlangCookieSecretName"`
	// TLSSecretName is the kubernetes.io/tls Secret in use, empty without TLS.
	TLSSecretName pulumi.StringOutput `pulumi:"tlsSecretName"`
	// AppSecretName is the service-binding Secret applications connect
	// with (the application user's credentials, or the admin's).
	AppSecretName pulumi.StringOutput `pulumi:"appSecretName"`
}

// builder carries what every child builder needs.
type builder struct {
	ctx   *pulumi.Context
	cfg   *Config
	names Names
	// prefix makes the children's logical names unique per component.
	prefix string
	opts   []pulumi.ResourceOption
}

// resourceName is a child's logical (Pulumi) name.
func (b *builder) resourceName(kind string) string { return b.prefix + "-" + kind }

// with adds options to the ones every child gets (the parent).
func (b *builder) with(extra ...pulumi.ResourceOption) []pulumi.ResourceOption {
	return append(append([]pulumi.ResourceOption{}, b.opts...), extra...)
}

// meta is the ObjectMeta of a namespaced child named name.
func (b *builder) meta(name string) *metav1.ObjectMetaArgs {
	return &metav1.ObjectMetaArgs{
		Name:      pulumi.String(name),
		Namespace: pulumi.String(b.cfg.Namespace),
		Labels:    pulumi.ToStringMap(b.names.Labels()),
	}
}

// NewRabbitCluster registers the component and all its children. cfg must
// come from LoadConfig (or ParseConfig plus CheckSecrets). Resources given
// in pulumi.DependsOn hold back every child, not only the component: checks
// of the cluster (CheckServiceMonitorCRD) thus fail before anything exists.
func NewRabbitCluster(ctx *pulumi.Context, name string, cfg *Config, opts ...pulumi.ResourceOption) (*RabbitCluster, error) {
	if cfg == nil {
		return nil, fmt.Errorf("RabbitCluster %s: no config", name)
	}
	c := &RabbitCluster{}
	if err := ctx.RegisterComponentResource(TypeToken, name, c, opts...); err != nil {
		return nil, fmt.Errorf("register RabbitCluster %s: %w", name, err)
	}
	b := &builder{ctx: ctx, cfg: cfg, names: cfg.Names(), prefix: name, opts: []pulumi.ResourceOption{pulumi.Parent(c)}}
	if ro, err := pulumi.NewResourceOptions(opts...); err != nil {
		return nil, fmt.Errorf("RabbitCluster %s options: %w", name, err)
	} else if len(ro.DependsOn) > 0 {
		b.opts = append(b.opts, pulumi.DependsOn(ro.DependsOn))
	}

	// The namespace, when created, comes first; everything else waits for it.
	if cfg.CreateNamespace {
		ns, err := b.namespace()
		if err != nil {
			return nil, err
		}
		b.opts = append(b.opts, pulumi.DependsOn([]pulumi.Resource{ns}))
	}

	conf, err := b.configMap()
	if err != nil {
		return nil, err
	}
	cookie, admin, err := b.secrets()
	if err != nil {
		return nil, err
	}
	deps := []pulumi.Resource{conf, cookie, admin}
	if defs, err := b.definitionsSecret(); err != nil {
		return nil, err
	} else if defs != nil {
		deps = append(deps, defs)
	}
	if tls, err := b.tlsSecret(); err != nil {
		return nil, err
	} else if tls != nil {
		deps = append(deps, tls)
	}
	rbac, err := b.rbac()
	if err != nil {
		return nil, err
	}
	deps = append(deps, rbac...)
	headless, err := b.headlessService()
	if err != nil {
		return nil, err
	}
	client, err := b.clientService()
	if err != nil {
		return nil, err
	}
	deps = append(deps, headless)
	sts, err := b.statefulSet(deps)
	if err != nil {
		return nil, err
	}
	if _, err := b.podDisruptionBudget(); err != nil {
		return nil, err
	}
	if _, err := b.networkPolicy(); err != nil {
		return nil, err
	}
	if _, err := b.serviceMonitor(); err != nil {
		return nil, err
	}
	app, err := b.appSecret()
	if err != nil {
		return nil, err
	}

	n := b.names
	c.StatefulSetName = sts.Metadata.Name().Elem()
	c.ClientServiceName = client.Metadata.Name().Elem()
	c.HeadlessServiceName = headless.Metadata.Name().Elem()
	c.AMQPURL = pulumi.String(amqpURL(cfg, n)).ToStringOutput()
	c.ManagementURL = pulumi.String(managementURL(cfg, n)).ToStringOutput()
	c.AdminSecretName = admin.Metadata.Name().Elem()
	c.ErlangCookieSecretName = cookie.Metadata.Name().Elem()
	c.TLSSecretName = pulumi.String(tlsSecretName(cfg, n)).ToStringOutput()
	c.AppSecretName = app.Metadata.Name().Elem()
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{
		"statefulSetName":        c.StatefulSetName,
		"clientServiceName":      c.ClientServiceName,
		"headlessServiceName":    c.HeadlessServiceName,
		"amqpUrl":                c.AMQPURL,
		"managementUrl":          c.ManagementURL,
		"adminSecretName":        c.AdminSecretName,
		"erlangCookieSecretName": c.ErlangCookieSecretName,
		"tlsSecretName":          c.TLSSecretName,
		"appSecretName":          c.AppSecretName,
	}); err != nil {
		return nil, fmt.Errorf("register RabbitCluster %s outputs: %w", name, err)
	}
	return c, nil
}

// amqpURL prefers plain AMQP when it is on, since in-cluster clients
// usually do not carry the CA.
func amqpURL(cfg *Config, n Names) string {
	if cfg.DisablePlainListeners {
		return fmt.Sprintf("amqps://%s:%d/", n.ClientHost(), PortAMQPS)
	}
	return fmt.Sprintf("amqp://%s:%d/", n.ClientHost(), PortAMQP)
}

func managementURL(cfg *Config, n Names) string {
	if cfg.DisablePlainListeners {
		return fmt.Sprintf("https://%s:%d/", n.ClientHost(), PortManagementTLS)
	}
	return fmt.Sprintf("http://%s:%d/", n.ClientHost(), PortManagement)
}
