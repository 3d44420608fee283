package definitions

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The lab's brokers all run the federation plugin, so a target without it
// is shown here against preflight's own input: what Probe reads.
func TestPreflightNamesFederationPluginTheTargetLacks(t *testing.T) {
	const doc = `{"rabbit_version":"3.10.8",
	 "vhosts":[{"name":"edge"}],
	 "parameters":[{"vhost":"edge","component":"federation-upstream","name":"origin","value":{"uri":"amqp://upstream"}}],
	 "policies":[{"vhost":"edge","name":"federate","pattern":"^fed\\.","apply-to":"exchanges","priority":0,"definition":{"federation-upstream-set":"all"}}]}`
	d, err := Load(strings.NewReader(doc), "")
	require.NoError(t, err)
	p, err := NewPlan(d, Options{QueueType: QueueTypeKeep})
	require.NoError(t, err)

	target := &Broker{Version: "3.10.8", User: "admin", UserTags: []string{"administrator"},
		ExchangeTypes: []string{"direct", "fanout", "topic", "headers"},
		Applications:  []string{"rabbit", "rabbitmq_management", "rabbitmq_shovel"}}
	var failed []Finding
	for _, f := range p.preflight(target) {
		if !f.OK {
			failed = append(failed, f)
		}
	}
	require.Len(t, failed, 1, "one missing plugin, one finding")
	assert.Equal(t, "plugins", failed[0].Check)
	assert.Contains(t, failed[0].Detail, "rabbitmq_federation")
	assert.Contains(t, failed[0].Detail, "edge/federation-upstream/origin", "names the upstream that needs it")
	assert.Contains(t, failed[0].Detail, "edge/federate", "names the policy that needs it")

	target.Applications = append(target.Applications, "rabbitmq_federation")
	for _, f := range p.preflight(target) {
		assert.True(t, f.OK, "%s: %s", f.Check, f.Detail)
	}
}
