package components

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without an application user nothing changes: no definitions, RabbitMQ
// seeds the admin user from default_user.conf on first boot.
func TestNoAppUserNoDefinitions(t *testing.T) {
	m := deploy(t, nil)
	assert.NotContains(t, m.ofType(tSecret), "rabbitmq-definitions")
	conf := confLines(t, strMap(t, m.find(t, tConfigMap, "rabbitmq-server-conf"), "data")[confKey])
	assert.NotContains(t, conf, "load_definitions")
	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	for _, v := range items(t, sts, "spec.template.spec.volumes") {
		assert.NotEqual(t, volDefinitions, str(t, v, "name"))
	}
	assert.NotContains(t, strMap(t, sts, "spec.template.metadata.annotations"), definitionsHashAnno)
}

func TestDefinitionsDeclareAdminAndAppUser(t *testing.T) {
	m := deployApp(t, map[string]string{
		"appVhost": "orders", "appConfigurePermission": "^orders\\.", "appWritePermission": "^orders\\.", "appReadPermission": "",
	})
	sec := m.find(t, tSecret, "rabbitmq-definitions")
	assert.Equal(t, "rabbitmq-definitions", str(t, sec, "metadata.name"))
	assert.True(t, isSecret(t, sec, "stringData", definitionsKey), "it holds passwords")
	var defs struct {
		Users []struct {
			Name, Password string
			Tags           []string
		}
		Vhosts []struct {
			Name, Description string
		}
		Permissions []struct {
			User, Vhost, Configure, Write, Read string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(strMap(t, sec, "stringData")[definitionsKey]), &defs))

	require.Len(t, defs.Users, 2)
	assert.Equal(t, "admin", defs.Users[0].Name)
	assert.Equal(t, testSecrets["warren:adminPassword"], defs.Users[0].Password)
	assert.Equal(t, []string{"administrator"}, defs.Users[0].Tags)
	assert.Equal(t, "orders-app", defs.Users[1].Name)
	assert.Equal(t, testAppPassword, defs.Users[1].Password)
	assert.Empty(t, defs.Users[1].Tags, "not an administrator, nor any management user")
	require.NotNil(t, defs.Users[1].Tags, "tags present (RabbitMQ refuses a user without)")

	// RabbitMQ seeds neither "/" nor the admin when it has definitions.
	require.Len(t, defs.Vhosts, 2)
	assert.Equal(t, "/", defs.Vhosts[0].Name)
	assert.Equal(t, "Default virtual host", defs.Vhosts[0].Description, "as RabbitMQ's own seeding describes it")
	assert.Equal(t, "orders", defs.Vhosts[1].Name)
	type perm struct{ User, Vhost, Configure, Write, Read string }
	var perms []perm
	for _, p := range defs.Permissions {
		perms = append(perms, perm(p))
	}
	assert.Equal(t, []perm{
		{"admin", "/", ".*", ".*", ".*"},
		{"admin", "orders", ".*", ".*", ".*"},
		{"orders-app", "orders", "^orders\\.", "^orders\\.", ""},
	}, perms)

	conf := confLines(t, strMap(t, m.find(t, tConfigMap, "rabbitmq-server-conf"), "data")[confKey])
	assert.Equal(t, "/etc/warren/definitions/definitions.json", conf["load_definitions"])
	for k := range conf {
		assert.NotContains(t, k, "definitions.", "no definitions.* keys: with load_definitions they stop 3.10 at boot")
	}

	sts := m.find(t, tStatefulSet, "rabbitmq-server")
	vol := byName(t, items(t, sts, "spec.template.spec.volumes"), volDefinitions)
	assert.Equal(t, "rabbitmq-definitions", str(t, vol, "secret.secretName"))
	assert.Equal(t, definitionsKey, str(t, items(t, vol, "secret.items")[0], "path"))
	mount := byName(t, items(t, sts, "spec.template.spec.containers[0].volumeMounts"), volDefinitions)
	assert.Equal(t, "/etc/warren/definitions", str(t, mount, "mountPath"))
	assert.True(t, get(t, mount, "readOnly").BoolValue())
}

// The app user on "/" needs no second vhost and no second admin grant.
func TestDefinitionsDefaultVhost(t *testing.T) {
	c, err := parseApp(nil)
	require.NoError(t, err)
	j, err := definitionsJSON(c)
	require.NoError(t, err)
	var defs map[string][]map[string]any
	require.NoError(t, json.Unmarshal([]byte(j), &defs))
	assert.Len(t, defs["vhosts"], 1)
	assert.Len(t, defs["permissions"], 2)
	assert.Equal(t, ".*", defs["permissions"][1]["configure"], "defaults: everything on its vhost")
}

// The pods restart when the definitions change (they import them at boot
// only), and the annotation that makes them does not reveal the passwords.
func TestDefinitionsHashRollsPods(t *testing.T) {
	anno := func(over map[string]string) string {
		return strMap(t, deployApp(t, over).find(t, tStatefulSet, "rabbitmq-server"), "spec.template.metadata.annotations")[definitionsHashAnno]
	}
	base := anno(nil)
	assert.Len(t, base, 64)
	assert.Equal(t, base, anno(nil), "stable across runs")
	assert.NotEqual(t, base, anno(map[string]string{"appReadPermission": "^x$"}))
	assert.NotEqual(t, base, anno(map[string]string{KeyAppPassword: "another-password"}))
	c, err := parseApp(nil)
	require.NoError(t, err)
	j, err := definitionsJSON(c)
	require.NoError(t, err)
	assert.NotEqual(t, sha256Hex(j), base, "keyed: not the plain hash of the file")
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// parseApp parses withApp(over), the app password stored as a secret.
func parseApp(over map[string]string) (*Config, error) {
	values := map[string]string{}
	for k, v := range withApp(over) {
		values["warren:"+k] = v
	}
	return ParseConfig(MapLookup(values, map[string]bool{"warren:" + KeyAppPassword: true}))
}

// With definitions, the startup probe also starts, on its own node, any
// declared vhost a parallel cluster start left down there; the vhost names
// are arguments, never spliced into the script.
func TestStartupProbeStartsDeclaredVhosts(t *testing.T) {
	probe := func(m *mocks) []string {
		return strs(t, m.find(t, tStatefulSet, "rabbitmq-server"), "spec.template.spec.containers[0].startupProbe.exec.command")
	}
	assert.Equal(t, []string{"rabbitmq-diagnostics", "-q", "check_running"}, probe(deploy(t, nil)), "no definitions: as before")

	cmd := probe(deployApp(t, map[string]string{"appVhost": "orders $(x)"}))
	require.Len(t, cmd, 6)
	assert.Equal(t, []string{"/bin/sh", "-c"}, cmd[:2])
	assert.Contains(t, cmd[2], "rabbitmq-diagnostics -q check_running && ")
	assert.Contains(t, cmd[2], `rabbitmqctl -q restart_vhost -p "$v"`)
	assert.NotContains(t, cmd[2], "orders")
	assert.Equal(t, []string{"startup", "/", "orders $(x)"}, cmd[3:])

	assert.Equal(t, []string{"startup", "/"}, probe(deployApp(t, nil))[3:], "the app user on / declares one vhost")
}
