package components

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPodDisruptionBudget(t *testing.T) {
	m := deploy(t, nil)
	pdb := m.find(t, tPDB, "rabbitmq-pdb")
	assert.Equal(t, "rabbitmq-server", str(t, pdb, "metadata.name"))
	assert.Equal(t, 1.0, num(t, pdb, "spec.maxUnavailable"))
	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	assert.Equal(t, strMap(t, sts, "spec.selector.matchLabels"), strMap(t, pdb, "spec.selector.matchLabels"),
		"the budget must select exactly the StatefulSet's pods")
}
