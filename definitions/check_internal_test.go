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

// The broker's export order varies from run to run; the plan's must not.
func TestPlanChangesAreSortedByKindThenID(t *testing.T) {
	const doc = `{"rabbit_version":"3.10.8","vhosts":[{"name":"v"}],
	 "queues":[
	  {"vhost":"v","name":"zeta","durable":true,"auto_delete":false,"arguments":{"x-max-priority":5}},
	  {"vhost":"v","name":"alpha","durable":true,"auto_delete":false,"arguments":{"x-queue-mode":"lazy"}},
	  {"vhost":"v","name":"mid","durable":true,"auto_delete":false,"arguments":{}}],
	 "policies":[{"vhost":"v","name":"ha","pattern":".*","apply-to":"queues","priority":0,"definition":{"ha-mode":"all"}}]}`
	d, err := Load(strings.NewReader(doc), "")
	require.NoError(t, err)
	p, err := NewPlan(d, Options{})
	require.NoError(t, err)
	require.NotEmpty(t, p.Changes)
	rank := map[Kind]int{}
	for i, k := range Kinds {
		rank[k] = i
	}
	for i := 1; i < len(p.Changes); i++ {
		a, b := p.Changes[i-1], p.Changes[i]
		assert.True(t, rank[a.Kind] < rank[b.Kind] || (a.Kind == b.Kind && a.ID <= b.ID), "%s %s before %s %s", a.Kind, a.ID, b.Kind, b.ID)
	}
	var blockers []string
	for _, c := range p.Blockers() {
		blockers = append(blockers, c.ID)
	}
	assert.Equal(t, []string{"v/alpha", "v/zeta"}, blockers)
}

func TestQueuesAndBindingsIntoAndUnion(t *testing.T) {
	const doc = `{"vhosts":[{"name":"v"}],
	 "queues":[{"vhost":"v","name":"gone","durable":false,"auto_delete":true,"arguments":{}},
	           {"vhost":"v","name":"kept","durable":true,"auto_delete":false,"arguments":{}}],
	 "bindings":[{"vhost":"v","source":"x","destination":"gone","destination_type":"queue","routing_key":"k","arguments":{}},
	             {"vhost":"v","source":"x","destination":"kept","destination_type":"queue","routing_key":"k","arguments":{}},
	             {"vhost":"v","source":"x","destination":"gone","destination_type":"exchange","routing_key":"k","arguments":{}}]}`
	d, err := Load(strings.NewReader(doc), "")
	require.NoError(t, err)
	picked := d.QueuesAndBindingsInto(func(vhost, queue string) bool { return vhost == "v" && queue == "gone" })
	require.Len(t, picked.Objects(KindQueue), 1)
	assert.Equal(t, "gone", picked.Objects(KindQueue)[0].Name())
	require.Len(t, picked.Objects(KindBinding), 1, "only the binding into the queue, not one into an exchange of that name")

	u := Union(picked, d.Only("v"))
	assert.Equal(t, d.Len(), u.Len(), "nothing added twice")
	empty := Union(picked, New())
	assert.Equal(t, 2, empty.Len())
}
