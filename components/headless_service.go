package components

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// headlessService gives every pod a stable DNS name (pod.service.namespace)
// for Erlang distribution. It publishes pods before they are ready because
// nodes must find each other to become ready at all.
func (b *builder) headlessService() (*corev1.Service, error) {
	svc, err := corev1.NewService(b.ctx, b.resourceName("nodes"), &corev1.ServiceArgs{
		Metadata: b.meta(b.names.HeadlessService()),
		Spec: &corev1.ServiceSpecArgs{
			ClusterIP:                pulumi.String("None"),
			PublishNotReadyAddresses: pulumi.Bool(true),
			Selector:                 pulumi.ToStringMap(b.names.SelectorLabels()),
			Ports: corev1.ServicePortArray{
				servicePort("epmd", PortEPMD),
				servicePort("clustering", PortDistribution),
			},
		},
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("Service %s: %w", b.names.HeadlessService(), err)
	}
	return svc, nil
}

func servicePort(name string, port int) corev1.ServicePortArgs {
	return corev1.ServicePortArgs{
		Name:       pulumi.String(name),
		Port:       pulumi.Int(port),
		TargetPort: pulumi.Int(port),
		Protocol:   pulumi.String("TCP"),
	}
}
