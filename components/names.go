package components

import (
	"fmt"
	"strconv"
)

// Names derives every Kubernetes object name, label and DNS name of one
// cluster from its name and namespace. All builders and `warren init` (for
// the certificate's SANs) take names from here, so they cannot drift apart.
type Names struct {
	// Cluster is the cluster's name (config `warren:name`).
	Cluster string
	// Namespace is the Kubernetes namespace everything lives in.
	Namespace string
}

// NewNames returns the names of cluster in namespace.
func NewNames(cluster, namespace string) Names { return Names{Cluster: cluster, Namespace: namespace} }

// StatefulSet is the StatefulSet's name; pods are StatefulSet()-0, -1, ...
func (n Names) StatefulSet() string { return n.Cluster + "-server" }

// HeadlessService is the headless Service that gives every pod a DNS name.
func (n Names) HeadlessService() string { return n.Cluster + "-nodes" }

// ClientService is the Service clients connect to.
func (n Names) ClientService() string { return n.Cluster }

// ConfigMap holds rabbitmq.conf and enabled_plugins.
func (n Names) ConfigMap() string { return n.Cluster + "-server-conf" }

// ErlangCookieSecret holds the shared Erlang cookie.
func (n Names) ErlangCookieSecret() string { return n.Cluster + "-erlang-cookie" }

// AdminSecret holds the admin user's name and password.
func (n Names) AdminSecret() string { return n.Cluster + "-default-user" }

// TLSSecret is the kubernetes.io/tls Secret the component creates from
// config (when `warren:tlsSecretName` names an existing one, that is used).
func (n Names) TLSSecret() string { return n.Cluster + "-tls" }

// ServiceAccount is the pods' identity for peer discovery.
func (n Names) ServiceAccount() string { return n.Cluster + "-server" }

// Role allows peer discovery to read the headless Service's endpoints.
func (n Names) Role() string { return n.Cluster + "-peer-discovery" }

// RoleBinding binds Role to ServiceAccount.
func (n Names) RoleBinding() string { return n.Cluster + "-server" }

// PodDisruptionBudget keeps voluntary evictions to one pod at a time.
func (n Names) PodDisruptionBudget() string { return n.Cluster + "-server" }

// NetworkPolicy restricts who reaches the pods.
func (n Names) NetworkPolicy() string { return n.Cluster + "-server" }

// ServiceMonitor tells a Prometheus Operator to scrape the pods.
func (n Names) ServiceMonitor() string { return n.Cluster }

// AppSecret is the service-binding Secret applications connect with.
func (n Names) AppSecret() string { return n.Cluster + "-app" }

// DefinitionsSecret holds the definitions file every node imports at boot
// (users, vhosts, permissions) when there is an application user.
func (n Names) DefinitionsSecret() string { return n.Cluster + "-definitions" }

// Pod is the name of the i-th pod (0-based).
func (n Names) Pod(i int) string { return n.StatefulSet() + "-" + strconv.Itoa(i) }

// hostSuffix is what follows a pod name in its resolvable host name: the
// headless Service and namespace, resolved through the pod's DNS search path.
// The operator uses the same short form so node names do not depend on the
// cluster domain.
func (n Names) hostSuffix() string { return "." + n.HeadlessService() + "." + n.Namespace }

// NodeName is the Erlang node name of the i-th pod (long names).
func (n Names) NodeName(i int) string { return "rabbit@" + n.Pod(i) + n.hostSuffix() }

// ClientHost is the client Service's namespace-qualified host name.
func (n Names) ClientHost() string { return n.ClientService() + "." + n.Namespace + ".svc" }

// DNSNames lists every name a server certificate must cover: the client and
// headless Services in all their forms, each of the first replicas pods, and
// wildcards for pods added later. clusterDomain is usually cluster.local.
func (n Names) DNSNames(replicas int, clusterDomain string) []string {
	forms := func(host string) []string {
		return []string{host, host + ".svc", host + ".svc." + clusterDomain}
	}
	names := []string{n.ClientService()}
	names = append(names, forms(n.ClientService()+"."+n.Namespace)...)
	names = append(names, n.HeadlessService())
	names = append(names, forms(n.HeadlessService()+"."+n.Namespace)...)
	names = append(names, forms("*."+n.HeadlessService()+"."+n.Namespace)...)
	for i := range replicas {
		names = append(names, n.Pod(i))
		names = append(names, forms(n.Pod(i)+"."+n.HeadlessService()+"."+n.Namespace)...)
	}
	return names
}

// Labels go on every object; SelectorLabels is the stable subset that
// selects the pods (a selector cannot change after the StatefulSet exists).
func (n Names) Labels() map[string]string {
	l := n.SelectorLabels()
	l["app.kubernetes.io/part-of"] = "warren"
	l["app.kubernetes.io/managed-by"] = "pulumi"
	return l
}

// SelectorLabels select the cluster's pods.
func (n Names) SelectorLabels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":      n.Cluster,
		"app.kubernetes.io/component": "rabbitmq",
	}
}

// maxClusterNameLen keeps every derived name valid: the StatefulSet name
// goes into the pods' controller-revision-hash label (name + "-" + 10
// characters must fit a 63-character label value), and "-server" is 7 long.
const maxClusterNameLen = 52 - len("-server")

// String is namespace/cluster, for messages.
func (n Names) String() string { return fmt.Sprintf("%s/%s", n.Namespace, n.Cluster) }
