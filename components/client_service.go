package components

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// clientPorts are the ports clients use, following which listeners are on.
func clientPorts(cfg *Config) corev1.ServicePortArray {
	var ports corev1.ServicePortArray
	if !cfg.DisablePlainListeners {
		ports = append(ports,
			servicePort("amqp", PortAMQP),
			servicePort("management", PortManagement),
			servicePort("prometheus", PortPrometheus))
	}
	if cfg.TLSEnabled {
		ports = append(ports,
			servicePort("amqps", PortAMQPS),
			servicePort("management-tls", PortManagementTLS),
			servicePort("prometheus-tls", PortPrometheusTLS))
	}
	return ports
}

// clientService is what applications and warren connect to.
func (b *builder) clientService() (*corev1.Service, error) {
	svc, err := corev1.NewService(b.ctx, b.resourceName("client"), &corev1.ServiceArgs{
		Metadata: b.meta(b.names.ClientService()),
		Spec: &corev1.ServiceSpecArgs{
			Type:     pulumi.String(b.cfg.ServiceType),
			Selector: pulumi.ToStringMap(b.names.SelectorLabels()),
			Ports:    clientPorts(b.cfg),
		},
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("Service %s: %w", b.names.ClientService(), err)
	}
	return svc, nil
}
