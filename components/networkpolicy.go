package components

import (
	"fmt"

	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Ports the CLI tools (rabbitmqctl, rabbitmq-diagnostics, the preStop
// hook's rabbitmq-upgrade) listen on for Erlang distribution while they run:
// the distribution port + 10000 to + 10010. A node talks back to a CLI tool
// of another pod on them (RPCs that write to the tool's group leader).
const (
	PortCLIDistributionMin = PortDistribution + 10000
	PortCLIDistributionMax = PortDistribution + 10010
)

// Ports stream queues replicate over between nodes (osiris' default range),
// whether or not the rabbitmq_stream plugin is on.
const (
	PortStreamReplicationMin = 6000
	PortStreamReplicationMax = 6500
)

// namespaceNameLabel is set on every namespace by Kubernetes (1.21 and
// later) to the namespace's name: what a policy selects namespaces by.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// policyPort allows TCP to port, or to port..end when end is above it.
func policyPort(port, end int) networkingv1.NetworkPolicyPortArgs {
	p := networkingv1.NetworkPolicyPortArgs{Port: pulumi.Int(port), Protocol: pulumi.String("TCP")}
	if end > port {
		p.EndPort = pulumi.Int(end)
	}
	return p
}

// peerPods selects the cluster's own pods (a podSelector alone means the
// policy's namespace).
func peerPods(n Names) networkingv1.NetworkPolicyPeerArgs {
	return networkingv1.NetworkPolicyPeerArgs{
		PodSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(n.SelectorLabels())},
	}
}

// peerNamespaces selects every pod of the named namespaces.
func peerNamespaces(names []string) networkingv1.NetworkPolicyPeerArgs {
	return networkingv1.NetworkPolicyPeerArgs{
		NamespaceSelector: &metav1.LabelSelectorArgs{
			MatchExpressions: metav1.LabelSelectorRequirementArray{metav1.LabelSelectorRequirementArgs{
				Key:      pulumi.String(namespaceNameLabel),
				Operator: pulumi.String("In"),
				Values:   pulumi.ToStringArray(names),
			}},
		},
	}
}

// peerAnyNamespace selects every pod of the Kubernetes cluster, and nothing
// outside it.
func peerAnyNamespace() networkingv1.NetworkPolicyPeerArgs {
	return networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: &metav1.LabelSelectorArgs{}}
}

// listenerPorts returns the plain and TLS ports of one listener that are on.
func listenerPorts(cfg *Config, plain, tls int) networkingv1.NetworkPolicyPortArray {
	var ports networkingv1.NetworkPolicyPortArray
	if !cfg.DisablePlainListeners {
		ports = append(ports, policyPort(plain, 0))
	}
	if cfg.TLSEnabled {
		ports = append(ports, policyPort(tls, 0))
	}
	return ports
}

// networkPolicyIngress lists who may reach which port:
//   - epmd, Erlang distribution, the CLI tools' distribution ports and
//     stream replication: only the cluster's own pods (the tools run inside
//     them);
//   - AMQP(S): the pods of warren:networkPolicyAmqpNamespaces (and the
//     cluster's own, for shovels and federation links to itself), or, with
//     none listed, every pod of the Kubernetes cluster; with a NodePort or
//     LoadBalancer client Service and none listed, any source, since those
//     clients come from outside the Kubernetes cluster;
//   - the HTTP API: the cluster's pods and warren:networkPolicyManagementNamespaces;
//   - Prometheus metrics: the cluster's pods and warren:monitoringNamespace.
//
// kubectl port-forward and the kubelet's probes are not subject to it.
func networkPolicyIngress(cfg *Config, n Names) networkingv1.NetworkPolicyIngressRuleArray {
	self := peerPods(n)
	rules := networkingv1.NetworkPolicyIngressRuleArray{
		networkingv1.NetworkPolicyIngressRuleArgs{
			From: networkingv1.NetworkPolicyPeerArray{self},
			Ports: networkingv1.NetworkPolicyPortArray{
				policyPort(PortEPMD, 0),
				policyPort(PortDistribution, 0),
				policyPort(PortCLIDistributionMin, PortCLIDistributionMax),
				policyPort(PortStreamReplicationMin, PortStreamReplicationMax),
			},
		},
	}

	amqp := networkingv1.NetworkPolicyIngressRuleArgs{Ports: listenerPorts(cfg, PortAMQP, PortAMQPS)}
	switch {
	case len(cfg.AMQPNamespaces) > 0:
		amqp.From = networkingv1.NetworkPolicyPeerArray{self, peerNamespaces(cfg.AMQPNamespaces)}
	case cfg.ServiceType == "ClusterIP":
		amqp.From = networkingv1.NetworkPolicyPeerArray{peerAnyNamespace()}
	default:
		// No From: every source, in the Kubernetes cluster or not.
	}
	rules = append(rules, amqp)

	management := networkingv1.NetworkPolicyPeerArray{self}
	if len(cfg.ManagementNamespaces) > 0 {
		management = append(management, peerNamespaces(cfg.ManagementNamespaces))
	}
	prometheus := networkingv1.NetworkPolicyPeerArray{self}
	if cfg.MonitoringNamespace != "" {
		prometheus = append(prometheus, peerNamespaces([]string{cfg.MonitoringNamespace}))
	}
	return append(rules,
		networkingv1.NetworkPolicyIngressRuleArgs{Ports: listenerPorts(cfg, PortManagement, PortManagementTLS), From: management},
		networkingv1.NetworkPolicyIngressRuleArgs{Ports: listenerPorts(cfg, PortPrometheus, PortPrometheusTLS), From: prometheus},
	)
}

// networkPolicy restricts ingress to the RabbitMQ pods (egress stays open:
// peer discovery asks the API server, shovels reach the old broker). It is
// built only with warren:networkPolicy on, and enforced only by a network
// plugin that implements NetworkPolicy (Calico, Cilium, ...).
func (b *builder) networkPolicy() (*networkingv1.NetworkPolicy, error) {
	if !b.cfg.NetworkPolicy {
		return nil, nil
	}
	np, err := networkingv1.NewNetworkPolicy(b.ctx, b.resourceName("network-policy"), &networkingv1.NetworkPolicyArgs{
		Metadata: b.meta(b.names.NetworkPolicy()),
		Spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(b.names.SelectorLabels())},
			PolicyTypes: pulumi.ToStringArray([]string{"Ingress"}),
			Ingress:     networkPolicyIngress(b.cfg, b.names),
		},
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("NetworkPolicy %s: %w", b.names.NetworkPolicy(), err)
	}
	return np, nil
}
