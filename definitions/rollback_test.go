package definitions_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/brokertest"
)

// snapshot is the target's definitions of the given vhosts and users,
// as canonical JSON: equal snapshots mean nothing changed there.
func snapshot(t *testing.T, api *broker.API, vhosts []string, users ...string) string {
	t.Helper()
	d, err := definitions.Export(context.Background(), api)
	require.NoError(t, err)
	only := d.Only(vhosts...)
	for _, u := range users {
		if o, ok := d.Find(definitions.KindUser, u); ok {
			only.Add(definitions.KindUser, o)
		}
	}
	b, err := only.MarshalJSON()
	require.NoError(t, err)
	return string(b)
}

// The target refuses an object part-way (a policy whose value RabbitMQ
// validates and warren does not): the import removes what it had created,
// never what existed before, and says which object was refused.
func TestImportRollsBackWhatItCreated(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	ctx := context.Background()
	newVhost, user := e.Vhost+"-rb", e.Vhost+"-u"
	t.Cleanup(func() {
		_ = e.TargetAPI.DeleteVhost(context.Background(), newVhost)
		_ = e.TargetAPI.DeleteUser(context.Background(), user)
	})
	// What existed before: a policy the file holds identically.
	require.NoError(t, e.TargetAPI.PutPolicy(ctx, broker.Policy{Vhost: e.Vhost, Name: "keep", Pattern: "^keep$", ApplyTo: "queues", Definition: map[string]any{"max-length": 7}}))
	doc := fmt.Sprintf(`{"vhosts":[{"name":%[1]q},{"name":%[2]q}],
	  "users":[{"name":%[3]q,"password_hash":"","hashing_algorithm":"rabbit_password_hashing_sha256","tags":""}],
	  "permissions":[{"user":%[3]q,"vhost":%[2]q,"configure":".*","write":".*","read":".*"}],
	  "policies":[{"vhost":%[1]q,"name":"keep","pattern":"^keep$","apply-to":"queues","priority":0,"definition":{"max-length":7}},
	              {"vhost":%[1]q,"name":"a-ok","pattern":"^a$","apply-to":"queues","priority":0,"definition":{"max-length":5}},
	              {"vhost":%[1]q,"name":"b-bad","pattern":"^b$","apply-to":"queues","priority":0,"definition":{"max-length":"ten"}}],
	  "queues":[{"name":"q","vhost":%[2]q,"durable":true,"auto_delete":false,"arguments":{}}]}`, e.Vhost, newVhost, user)
	d, err := definitions.Load(strings.NewReader(doc), "")
	require.NoError(t, err)
	plan, err := definitions.NewPlan(d, definitions.Options{QueueType: definitions.QueueTypeKeep})
	require.NoError(t, err)
	before := snapshot(t, e.TargetAPI, []string{e.Vhost, newVhost}, user)

	res, err := definitions.Import(ctx, e.TargetAPI, plan)
	require.Error(t, err)
	assert.Equal(t, definitions.ClassUsage, definitions.ClassOf(err), "refused and rolled back: nothing changed")
	msg := err.Error()
	assert.Contains(t, msg, "the target refused one of 2 policies")
	assert.Contains(t, msg, "did not create "+e.Vhost+"/b-bad", "names the refused policy, not the first of the request")
	assert.Contains(t, msg, "is not a valid maximum length", "the broker's reason, readable")
	assert.Contains(t, msg, "the target is as it was before")
	require.NotNil(t, res.RolledBack)
	assert.ElementsMatch(t, []string{"policy " + e.Vhost + "/a-ok", "user " + user, "vhost " + newVhost}, res.RolledBack.Removed,
		"the new policy in an existing vhost goes alone; the new vhost takes its permission with it")
	assert.Empty(t, res.RolledBack.Left)
	assert.Zero(t, res.Total(), "nothing created is left")

	assert.Equal(t, before, snapshot(t, e.TargetAPI, []string{e.Vhost, newVhost}, user), "the target is as before, the existing policy kept")
}
