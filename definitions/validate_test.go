package definitions_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/definitions"
)

func TestValidateRefusesWhatRabbitMQ310RefusesPartWay(t *testing.T) {
	for _, c := range []struct {
		name, doc, want string
	}{
		{"durable as a string (function_clause)", `{"vhosts":[{"name":"v"}],"queues":[{"name":"q","vhost":"v","durable":"yes","auto_delete":false,"arguments":{}}]}`,
			`queue v/q: "durable" is the string "yes", must be true or false`},
		{"queue without durable", `{"vhosts":[{"name":"v"}],"queues":[{"name":"q","vhost":"v","auto_delete":false}]}`,
			`queue v/q: no "durable" field (true or false)`},
		{"exchange auto_delete a number", `{"vhosts":[{"name":"v"}],"exchanges":[{"name":"x","vhost":"v","type":"direct","durable":true,"auto_delete":0}]}`,
			`exchange v/x: "auto_delete" is the number 0, must be true or false`},
		{"user without tags (tags_not_present)", `{"users":[{"name":"u","password_hash":"h"}]}`, `user u: no "tags" field`},
		{"user with both passwords", `{"users":[{"name":"u","password":"p","password_hash":"h","tags":""}]}`, `both "password" and "password_hash"`},
		{"permission without read", `{"vhosts":[{"name":"v"}],"users":[{"name":"u","tags":""}],"permissions":[{"user":"u","vhost":"v","configure":".*","write":".*"}]}`,
			`permission v/u: no "read" field`},
		{"policy apply-to", `{"vhosts":[{"name":"v"}],"policies":[{"vhost":"v","name":"p","pattern":".*","apply-to":"streams","definition":{"max-length":1}}]}`,
			`policy v/p: "apply-to" is "streams", must be one of all, exchanges, queues`},
		{"policy priority a string", `{"vhosts":[{"name":"v"}],"policies":[{"vhost":"v","name":"p","pattern":".*","priority":"1","definition":{}}]}`,
			`"priority" is the string "1", must be a number`},
		{"binding without routing key", `{"vhosts":[{"name":"v"}],"bindings":[{"vhost":"v","source":"amq.direct","destination":"q","destination_type":"queue"}]}`,
			`no "routing_key" field`},
		{"max priority above 255", `{"vhosts":[{"name":"v"}],"queues":[{"name":"q","vhost":"v","durable":true,"auto_delete":false,"arguments":{"x-max-priority":300}}]}`,
			`argument x-max-priority is 300, must be at most 255`},
		{"ttl as a string", `{"vhosts":[{"name":"v"}],"queues":[{"name":"q","vhost":"v","durable":true,"auto_delete":false,"arguments":{"x-message-ttl":"60000"}}]}`,
			`argument x-message-ttl is the string "60000", must be an integer`},
		{"unknown overflow", `{"vhosts":[{"name":"v"}],"queues":[{"name":"q","vhost":"v","durable":true,"auto_delete":false,"arguments":{"x-overflow":"drop-tail"}}]}`,
			`argument x-overflow is the string "drop-tail", must be one of drop-head`},
		{"dead-letter key without exchange", `{"vhosts":[{"name":"v"}],"queues":[{"name":"q","vhost":"v","durable":true,"auto_delete":false,"arguments":{"x-dead-letter-routing-key":"k"}}]}`,
			`without x-dead-letter-exchange`},
		{"bad default queue type", `{"vhosts":[{"name":"v","default_queue_type":"fast"}]}`, `"default_queue_type" is "fast"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := definitions.Load(strings.NewReader(c.doc), "")
			require.NoError(t, err, "Load reads the structure; Validate judges the values")
			problems := definitions.Validate(d)
			require.NotEmpty(t, problems)
			assert.Contains(t, strings.Join(problems, "\n"), c.want)
		})
	}
}

func TestValidateAcceptsWhatBrokersExport(t *testing.T) {
	d, err := definitions.Load(strings.NewReader(`{"rabbit_version":"3.10.8",
	  "vhosts":[{"name":"v","limits":[],"metadata":{"description":"","tags":[]}}],
	  "users":[{"name":"u","password_hash":"h","hashing_algorithm":"rabbit_password_hashing_sha256","tags":["management"],"limits":{}}],
	  "permissions":[{"user":"u","vhost":"v","configure":".*","write":".*","read":".*"}],
	  "topic_permissions":[{"user":"u","vhost":"v","exchange":"x","write":".*","read":".*"}],
	  "parameters":[{"vhost":"v","component":"vhost-limits","name":"limits","value":{"max-queues":10}}],
	  "global_parameters":[{"name":"cluster_name","value":"c"}],
	  "policies":[{"vhost":"v","name":"p","pattern":"^q","apply-to":"queues","priority":0,"definition":{"max-length":5}}],
	  "queues":[{"name":"q","vhost":"v","durable":true,"auto_delete":false,"arguments":{"x-queue-type":"quorum","x-max-age":"7D","x-dead-letter-exchange":"x","x-dead-letter-routing-key":"dead"}}],
	  "exchanges":[{"name":"x","vhost":"v","type":"topic","durable":true,"auto_delete":false,"internal":false,"arguments":{}}],
	  "bindings":[{"source":"x","vhost":"v","destination":"q","destination_type":"queue","routing_key":"#","arguments":{}}]}`), "")
	require.NoError(t, err)
	assert.Empty(t, definitions.Validate(d))
	assert.Empty(t, definitions.References(d, nil))
}

func TestReferencesNameWhatNeitherSideHas(t *testing.T) {
	// The first file: a valid vhost and exchange, then a queue in
	// a vhost nobody has. The import used to create the first two, then
	// blame the valid queue ("first pv/okq").
	want, err := definitions.Load(strings.NewReader(`{"vhosts":[{"name":"pv"}],
	  "users":[{"name":"u","tags":""}],
	  "permissions":[{"user":"ghost","vhost":"pv","configure":"","write":"","read":""}],
	  "exchanges":[{"name":"x","vhost":"pv","type":"direct","durable":true,"auto_delete":false}],
	  "queues":[{"name":"okq","vhost":"pv","durable":true,"auto_delete":false},{"name":"badq","vhost":"nope","durable":true,"auto_delete":false}],
	  "bindings":[{"vhost":"pv","source":"x","destination":"missing","destination_type":"queue","routing_key":""},
	              {"vhost":"pv","source":"nox","destination":"okq","destination_type":"queue","routing_key":""},
	              {"vhost":"pv","source":"amq.topic","destination":"x","destination_type":"exchange","routing_key":""},
	              {"vhost":"pv","source":"","destination":"onthetarget","destination_type":"queue","routing_key":""}]}`), "")
	require.NoError(t, err)
	have, err := definitions.Load(strings.NewReader(`{"vhosts":[{"name":"pv"}],"queues":[{"name":"onthetarget","vhost":"pv","durable":true,"auto_delete":false}]}`), "")
	require.NoError(t, err)
	got := strings.Join(definitions.References(want, have), "\n")
	assert.Contains(t, got, `vhost "nope" is neither in the definitions nor on the target, and 1 object(s) belong to it (queue nope/badq)`)
	assert.NotContains(t, got, "queue pv/okq", "the valid queue is never blamed")
	assert.Contains(t, got, `permission pv/ghost: user "ghost"`)
	assert.Contains(t, got, `queue "missing" is in neither`)
	assert.Contains(t, got, `exchange "nox" is in neither`)
	assert.NotContains(t, got, "amq.topic", "built-in exchanges exist in every vhost")
	assert.NotContains(t, got, "onthetarget", "objects the target holds count")
	assert.Len(t, definitions.References(want, have), 4)
}
