package definitions_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/definitions"
)

func load(t *testing.T, doc string) *definitions.Definitions {
	t.Helper()
	d, err := definitions.Load(strings.NewReader(doc), "")
	require.NoError(t, err)
	return d
}

func TestCompareByMeaningNotSpelling(t *testing.T) {
	want := load(t, `{"rabbit_version":"3.10.8",
	  "vhosts":[{"name":"v","description":"d","tags":["b","a"]}],
	  "users":[{"name":"u","password_hash":"h","hashing_algorithm":"rabbit_password_hashing_sha256","tags":["monitoring","management"],"limits":{}}],
	  "queues":[{"name":"q","vhost":"v","durable":true,"auto_delete":false,"arguments":{"x-max-length":5}},
	            {"name":"c","vhost":"v","durable":true,"auto_delete":false,"arguments":{"x-queue-type":"classic"}}],
	  "policies":[{"vhost":"v","name":"p","pattern":"^q","definition":{"max-length":5}}],
	  "exchanges":[{"name":"x","vhost":"v","type":"topic","durable":true,"auto_delete":false,"internal":false,"arguments":{}}]}`)
	got := load(t, `{"rabbit_version":"3.13.0",
	  "vhosts":[{"name":"v","metadata":{"description":"d","tags":["a","b"]}},{"name":"other"}],
	  "users":[{"name":"u","password_hash":"h","hashing_algorithm":"rabbit_password_hashing_sha256","tags":"management,monitoring"},
	           {"name":"admin","password_hash":"x","tags":["administrator"]}],
	  "permissions":[{"user":"admin","vhost":"v","configure":".*","write":".*","read":".*"}],
	  "queues":[{"name":"q","vhost":"v","durable":true,"arguments":{"x-max-length":5.0},"type":"classic"},
	            {"name":"c","vhost":"v","durable":true,"auto_delete":false,"arguments":{}},
	            {"name":"elsewhere","vhost":"other","durable":true,"arguments":{}}],
	  "policies":[{"vhost":"v","name":"p","pattern":"^q","apply-to":"all","priority":0,"definition":{"max-length":5}}],
	  "exchanges":[{"name":"x","vhost":"v","type":"topic","durable":true,"arguments":{}}],
	  "global_parameters":[{"name":"cluster_name","value":"target"}]}`)
	assert.Empty(t, definitions.Compare(want, got))
}

func TestCompareReportsWhatDiffers(t *testing.T) {
	want := load(t, `{"vhosts":[{"name":"v"}],
	  "users":[{"name":"u","password_hash":"h","tags":["management"]}],
	  "permissions":[{"user":"u","vhost":"v","configure":".*","write":".*","read":".*"}],
	  "queues":[{"name":"q","vhost":"v","durable":true,"arguments":{"x-queue-type":"quorum"}},
	            {"name":"gone","vhost":"v","durable":true,"arguments":{}}],
	  "parameters":[{"vhost":"v","component":"vhost-limits","name":"limits","value":{"max-queues":10}}]}`)
	got := load(t, `{"vhosts":[{"name":"v"}],
	  "users":[{"name":"u","password_hash":"h2","tags":["management"]}],
	  "permissions":[{"user":"u","vhost":"v","configure":"","write":".*","read":".*"}],
	  "queues":[{"name":"q","vhost":"v","durable":true,"arguments":{}},
	            {"name":"extra","vhost":"v","durable":true,"arguments":{}}],
	  "parameters":[{"vhost":"v","component":"vhost-limits","name":"limits","value":{"max-queues":11}}]}`)
	var lines []string
	for _, d := range definitions.Compare(want, got) {
		lines = append(lines, d.String())
	}
	assert.Equal(t, []string{
		`user u differs: password_hash: want "h", got "h2"`,
		`permission v/u differs: configure: want ".*", got ""`,
		`parameter v/vhost-limits/limits differs: value: want {"max-queues":10}, got {"max-queues":11}`,
		`queue v/q differs: arguments: want {"x-queue-type":"quorum"}, got {}`,
		`queue v/gone missing`,
		`queue v/extra unexpected`,
	}, lines)
}
