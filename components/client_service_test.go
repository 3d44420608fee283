package components

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func clientServicePorts(t *testing.T, over map[string]string) (map[string]float64, string) {
	svc := deploy(t, over).find(t, tService, "rabbitmq-client")
	ports := map[string]float64{}
	for _, p := range items(t, svc, "spec.ports") {
		ports[p["name"].StringValue()] = p["port"].NumberValue()
	}
	return ports, str(t, svc, "spec.type")
}

func TestClientService(t *testing.T) {
	ports, typ := clientServicePorts(t, nil)
	assert.Equal(t, "ClusterIP", typ)
	assert.Equal(t, map[string]float64{"amqp": 5672, "management": 15672, "prometheus": 15692}, ports)

	ports, typ = clientServicePorts(t, map[string]string{"tlsEnabled": "true", "serviceType": "LoadBalancer"})
	assert.Equal(t, "LoadBalancer", typ)
	assert.Equal(t, map[string]float64{"amqp": 5672, "management": 15672, "prometheus": 15692,
		"amqps": 5671, "management-tls": 15671, "prometheus-tls": 15691}, ports)

	ports, _ = clientServicePorts(t, map[string]string{"tlsEnabled": "true", "disablePlainListeners": "true"})
	assert.Equal(t, map[string]float64{"amqps": 5671, "management-tls": 15671, "prometheus-tls": 15691}, ports)
}

func TestClientServiceIsNotHeadless(t *testing.T) {
	svc := deploy(t, nil).find(t, tService, "rabbitmq-client")
	assert.Equal(t, "rabbitmq", str(t, svc, "metadata.name"))
	assert.False(t, has(svc, "spec.clusterIP"), "the client Service load-balances over a cluster IP")
}
