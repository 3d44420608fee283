package components

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNamespaceOnlyWhenAsked(t *testing.T) {
	assert.Empty(t, deploy(t, map[string]string{"namespace": "mq"}).ofType(tNamespace))

	m := deploy(t, map[string]string{"namespace": "mq", "createNamespace": "true"})
	ns := m.find(t, tNamespace, "rabbitmq-namespace")
	assert.Equal(t, "mq", str(t, ns, "metadata.name"))
	assert.False(t, has(ns, "metadata.namespace"), "a Namespace is cluster-scoped")
	assert.Equal(t, "mq", str(t, m.find(t, tStatefulSet, "rabbitmq-server"), "metadata.namespace"))
}
