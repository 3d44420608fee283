package components

import (
	"strconv"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rule is one ingress rule as the test reads it: the ports ("5672" or
// "35672-35682") and the peers, each described as "pods" (the cluster's own
// pods), "any-namespace" or "ns:a,b" (namespaces by name).
type rule struct {
	ports []string
	from  []string // nil: from anywhere
}

func policyRules(t *testing.T, np resource.PropertyMap) []rule {
	t.Helper()
	var out []rule
	for _, r := range items(t, np, "spec.ingress") {
		var got rule
		for _, p := range items(t, r, "ports") {
			assert.Equal(t, "TCP", str(t, p, "protocol"))
			port := num(t, p, "port")
			if has(p, "endPort") {
				got.ports = append(got.ports, fmtNum(port)+"-"+fmtNum(num(t, p, "endPort")))
			} else {
				got.ports = append(got.ports, fmtNum(port))
			}
		}
		if has(r, "from") {
			for _, peer := range items(t, r, "from") {
				got.from = append(got.from, describePeer(t, peer))
			}
		}
		out = append(out, got)
	}
	return out
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func describePeer(t *testing.T, peer resource.PropertyMap) string {
	t.Helper()
	switch {
	case has(peer, "podSelector") && !has(peer, "namespaceSelector"):
		assert.Equal(t, NewNames("rabbitmq", "x").SelectorLabels(), strMap(t, peer, "podSelector.matchLabels"), "the cluster's own pods")
		return "pods"
	case has(peer, "namespaceSelector.matchExpressions"):
		require.False(t, has(peer, "podSelector"), "every pod of the namespaces")
		exprs := items(t, peer, "namespaceSelector.matchExpressions")
		require.Len(t, exprs, 1)
		assert.Equal(t, "kubernetes.io/metadata.name", str(t, exprs[0], "key"))
		assert.Equal(t, "In", str(t, exprs[0], "operator"))
		d := "ns:"
		for i, v := range strs(t, exprs[0], "values") {
			if i > 0 {
				d += ","
			}
			d += v
		}
		return d
	case has(peer, "namespaceSelector"):
		assert.Empty(t, get(t, peer, "namespaceSelector").ObjectValue(), "an empty selector: every namespace")
		return "any-namespace"
	}
	t.Fatalf("unexpected peer %v", peer)
	return ""
}

var interNode = rule{ports: []string{"4369", "25672", "35672-35682", "6000-6500"}, from: []string{"pods"}}

func TestNetworkPolicyOffByDefault(t *testing.T) {
	assert.Empty(t, deploy(t, nil).ofType(tNetPol))
}

func TestNetworkPolicyDefaults(t *testing.T) {
	m := deploy(t, map[string]string{"networkPolicy": "true"})
	np := m.find(t, tNetPol, "rabbitmq-network-policy")
	assert.Equal(t, "rabbitmq-server", str(t, np, "metadata.name"))
	assert.Equal(t, "default", str(t, np, "metadata.namespace"))
	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	assert.Equal(t, strMap(t, sts, "spec.selector.matchLabels"), strMap(t, np, "spec.podSelector.matchLabels"),
		"the policy must select exactly the StatefulSet's pods")
	assert.Equal(t, []string{"Ingress"}, strs(t, np, "spec.policyTypes"), "egress stays open: peer discovery, shovels")
	assert.Equal(t, []rule{
		interNode,
		{ports: []string{"5672"}, from: []string{"any-namespace"}},
		{ports: []string{"15672"}, from: []string{"pods"}},
		{ports: []string{"15692"}, from: []string{"pods", "ns:monitoring"}},
	}, policyRules(t, np))
}

func TestNetworkPolicyNamespaces(t *testing.T) {
	np := deploy(t, map[string]string{
		"networkPolicy":                     "true",
		"networkPolicyAmqpNamespaces":       `["orders","billing"]`,
		"networkPolicyManagementNamespaces": "ops",
		"monitoringNamespace":               "prometheus",
	}).find(t, tNetPol, "rabbitmq-network-policy")
	assert.Equal(t, []rule{
		interNode,
		{ports: []string{"5672"}, from: []string{"pods", "ns:orders,billing"}},
		{ports: []string{"15672"}, from: []string{"pods", "ns:ops"}},
		{ports: []string{"15692"}, from: []string{"pods", "ns:prometheus"}},
	}, policyRules(t, np))
}

// A LoadBalancer's clients come from outside the Kubernetes cluster, which
// a namespace selector never matches.
func TestNetworkPolicyExternalService(t *testing.T) {
	for _, typ := range []string{"LoadBalancer", "NodePort"} {
		rules := policyRules(t, deploy(t, map[string]string{"networkPolicy": "true", "serviceType": typ}).find(t, tNetPol, "rabbitmq-network-policy"))
		require.Len(t, rules, 4)
		assert.Equal(t, rule{ports: []string{"5672"}}, rules[1], typ)
		assert.Equal(t, []string{"pods"}, rules[2].from, "%s: the API stays closed", typ)
	}
	rules := policyRules(t, deploy(t, map[string]string{"networkPolicy": "true", "serviceType": "LoadBalancer", "networkPolicyAmqpNamespaces": "orders"}).find(t, tNetPol, "rabbitmq-network-policy"))
	assert.Equal(t, []string{"pods", "ns:orders"}, rules[1].from, "listed namespaces win")
}

func TestNetworkPolicyFollowsListeners(t *testing.T) {
	rules := policyRules(t, deploy(t, map[string]string{"networkPolicy": "true", "tlsEnabled": "true"}).find(t, tNetPol, "rabbitmq-network-policy"))
	assert.Equal(t, []string{"5672", "5671"}, rules[1].ports)
	assert.Equal(t, []string{"15672", "15671"}, rules[2].ports)
	assert.Equal(t, []string{"15692", "15691"}, rules[3].ports)

	rules = policyRules(t, deploy(t, map[string]string{
		"networkPolicy": "true", "tlsEnabled": "true", "disablePlainListeners": "true", "monitoringNamespace": "",
	}).find(t, tNetPol, "rabbitmq-network-policy"))
	assert.Equal(t, interNode, rules[0])
	assert.Equal(t, []string{"5671"}, rules[1].ports)
	assert.Equal(t, []string{"15671"}, rules[2].ports)
	assert.Equal(t, rule{ports: []string{"15691"}, from: []string{"pods"}}, rules[3], "no monitoring namespace: only the pods")
}

// Every port a pod listens on is covered by some rule, so turning the
// policy on cannot silently cut a listener off.
func TestNetworkPolicyCoversEveryContainerPort(t *testing.T) {
	for _, over := range []map[string]string{
		{"networkPolicy": "true"},
		{"networkPolicy": "true", "tlsEnabled": "true"},
		{"networkPolicy": "true", "tlsEnabled": "true", "disablePlainListeners": "true"},
	} {
		m := deploy(t, over)
		allowed := map[string]bool{}
		for _, r := range policyRules(t, m.find(t, tNetPol, "rabbitmq-network-policy")) {
			for _, p := range r.ports {
				allowed[p] = true
			}
		}
		sts := m.find(t, tStatefulSet, "rabbitmq-server")
		for _, p := range items(t, sts, "spec.template.spec.containers[0].ports") {
			assert.True(t, allowed[fmtNum(num(t, p, "containerPort"))], "%v: port %s", over, str(t, p, "name"))
		}
	}
}
