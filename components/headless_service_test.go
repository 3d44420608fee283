package components

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHeadlessService(t *testing.T) {
	m := deploy(t, nil)
	svc := m.find(t, tService, "rabbitmq-nodes")
	assert.Equal(t, "rabbitmq-nodes", str(t, svc, "metadata.name"))
	assert.Equal(t, "None", str(t, svc, "spec.clusterIP"))
	assert.True(t, get(t, svc, "spec.publishNotReadyAddresses").BoolValue(), "nodes must find each other before they are ready")
	ports := map[string]float64{}
	for _, p := range items(t, svc, "spec.ports") {
		ports[p["name"].StringValue()] = p["port"].NumberValue()
	}
	assert.Equal(t, map[string]float64{"epmd": 4369, "clustering": 25672}, ports)
	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	assert.Equal(t, strMap(t, sts, "spec.selector.matchLabels"), strMap(t, svc, "spec.selector"))
}
