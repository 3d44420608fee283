package components

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRBACForPeerDiscovery(t *testing.T) {
	m := deploy(t, map[string]string{"namespace": "mq"})
	sa := m.find(t, tSA, "rabbitmq-service-account")
	assert.Equal(t, "rabbitmq-server", str(t, sa, "metadata.name"))
	assert.Equal(t, "mq", str(t, sa, "metadata.namespace"))

	role := m.find(t, tRole, "rabbitmq-peer-discovery")
	rules := items(t, role, "rules")
	require.Len(t, rules, 2)
	assert.Equal(t, []string{"endpoints"}, strs(t, rules[0], "resources"))
	assert.Equal(t, []string{"get"}, strs(t, rules[0], "verbs"), "peer discovery only reads endpoints")
	assert.Equal(t, []string{"events"}, strs(t, rules[1], "resources"))
	assert.Equal(t, []string{"create"}, strs(t, rules[1], "verbs"))

	rb := m.find(t, tRoleBinding, "rabbitmq-role-binding")
	assert.Equal(t, "Role", str(t, rb, "roleRef.kind"))
	assert.Equal(t, "rabbitmq-peer-discovery", str(t, rb, "roleRef.name"))
	assert.Equal(t, "ServiceAccount", str(t, rb, "subjects[0].kind"))
	assert.Equal(t, "rabbitmq-server", str(t, rb, "subjects[0].name"))
	assert.Equal(t, "mq", str(t, rb, "subjects[0].namespace"))

	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	assert.Equal(t, str(t, sa, "metadata.name"), str(t, sts, "spec.template.spec.serviceAccountName"))
}
