package components

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNames(t *testing.T) {
	n := NewNames("orders", "mq")
	assert.Equal(t, "orders-server", n.StatefulSet())
	assert.Equal(t, "orders-server-2", n.Pod(2))
	assert.Equal(t, "orders-nodes", n.HeadlessService())
	assert.Equal(t, "orders", n.ClientService())
	assert.Equal(t, "rabbit@orders-server-0.orders-nodes.mq", n.NodeName(0))
	assert.Equal(t, "orders.mq.svc", n.ClientHost())
	assert.Equal(t, n.SelectorLabels()["app.kubernetes.io/name"], n.Labels()["app.kubernetes.io/name"])
}

func TestDNSNamesCoverServicesAndEveryPod(t *testing.T) {
	names := NewNames("rabbitmq", "mq").DNSNames(3, "cluster.local")
	for _, want := range []string{
		"rabbitmq", "rabbitmq.mq", "rabbitmq.mq.svc", "rabbitmq.mq.svc.cluster.local",
		"rabbitmq-nodes.mq.svc.cluster.local",
		"rabbitmq-server-0", "rabbitmq-server-0.rabbitmq-nodes.mq", "rabbitmq-server-2.rabbitmq-nodes.mq.svc.cluster.local",
		"*.rabbitmq-nodes.mq.svc",
	} {
		assert.Contains(t, names, want)
	}
	assert.NotContains(t, names, "rabbitmq-server-3")
}

// The longest name a default pod gets stays within Kubernetes' label limit.
func TestLongestNameFits(t *testing.T) {
	name := "r"
	for len(name) < maxClusterNameLen {
		name += "x"
	}
	c, err := parse(map[string]string{"name": name})
	if assert.NoError(t, err) {
		assert.LessOrEqual(t, len(c.Names().StatefulSet())+len("-")+10, 63)
	}
}
