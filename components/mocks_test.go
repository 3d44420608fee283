package components

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// mocks records every resource the program registers, as the engine would
// receive it, and echoes inputs back as outputs.
type mocks struct {
	mu        sync.Mutex
	resources []pulumi.MockResourceArgs
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resources = append(m.resources, args)
	return args.Name + "_id", args.Inputs, nil
}

func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) { return args.Args, nil }

// find returns the inputs of the one resource of type typ named name.
func (m *mocks) find(t *testing.T, typ, name string) resource.PropertyMap {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.resources {
		if r.TypeToken == typ && r.Name == name {
			return r.Inputs
		}
	}
	require.Failf(t, "resource not registered", "%s %q among %v", typ, name, m.summary())
	return nil
}

// args returns the whole registration of the one resource of type typ
// named name (its options, dependencies, provider).
func (m *mocks) args(t *testing.T, typ, name string) pulumi.MockResourceArgs {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.resources {
		if r.TypeToken == typ && r.Name == name {
			return r
		}
	}
	require.Failf(t, "resource not registered", "%s %q among %v", typ, name, m.summary())
	return pulumi.MockResourceArgs{}
}

// ofType returns the logical names of resources of type typ.
func (m *mocks) ofType(typ string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for _, r := range m.resources {
		if r.TypeToken == typ {
			names = append(names, r.Name)
		}
	}
	return names
}

func (m *mocks) summary() []string {
	var s []string
	for _, r := range m.resources {
		s = append(s, r.TypeToken+"/"+r.Name)
	}
	return s
}

// testSecrets are valid secrets, marked as Pulumi secrets.
var testSecrets = map[string]string{
	"warren:" + KeyErlangCookie:  "cookie-0123456789abcdefghij",
	"warren:" + KeyAdminPassword: "s3cretPassw0rd",
	"warren:" + KeyTLSCert:       "-----BEGIN CERTIFICATE-----\nserver\n-----END CERTIFICATE-----\n",
	"warren:" + KeyTLSKey:        "-----BEGIN EC PRIVATE KEY-----\nkey\n-----END EC PRIVATE KEY-----\n",
	"warren:" + KeyTLSCACert:     "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
}

// stackConfig reads the config block of the repository's Pulumi.<stack>.yaml
// the way the engine passes it to a program: scalars as strings, lists and
// maps as JSON.
func stackConfig(t *testing.T, stack string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "Pulumi."+stack+".yaml"))
	require.NoError(t, err)
	var file struct {
		Config map[string]any `yaml:"config"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &file))
	out := map[string]string{}
	for k, v := range file.Config {
		switch v := v.(type) {
		case string:
			out[k] = v
		case int, float64, bool:
			out[k] = fmt.Sprint(v)
		default:
			b, err := json.Marshal(v)
			require.NoError(t, err)
			out[k] = string(b)
		}
	}
	return out
}

// withSecrets adds the test secrets to a plain config.
func withSecrets(cfg map[string]string) (map[string]string, []string) {
	out := map[string]string{}
	for k, v := range cfg {
		out[k] = v
	}
	var keys []string
	for k, v := range testSecrets {
		if _, set := out[k]; !set {
			out[k] = v
		}
		keys = append(keys, k)
	}
	return out, keys
}

// runProgram runs the program against mocks with config (full keys) and
// the given secret keys; dryRun makes it a preview.
func runProgram(t *testing.T, program pulumi.RunFunc, config map[string]string, secretKeys []string, dryRun bool) (*mocks, error) {
	t.Helper()
	m := &mocks{}
	err := pulumi.RunErr(program, pulumi.WithMocks("project", "stack", m), func(info *pulumi.RunInfo) {
		info.Config = config
		info.ConfigSecretKeys = secretKeys
		info.DryRun = dryRun
	})
	return m, err
}

// deploy runs Program with the defaults plus overrides (short keys) and the
// test secrets, and requires success.
func deploy(t *testing.T, overrides map[string]string) *mocks {
	t.Helper()
	cfg := map[string]string{}
	for k, v := range overrides {
		cfg["warren:"+k] = v
	}
	full, keys := withSecrets(cfg)
	m, err := runProgram(t, Program, full, keys, false)
	require.NoError(t, err)
	return m
}

var indexRe = regexp.MustCompile(`^(.*)\[(\d+)\]$`)

// get walks a dotted path like "spec.template.spec.containers[0].image"
// through inputs, unwrapping secrets, and fails the test when a step is
// missing.
func get(t *testing.T, pm resource.PropertyMap, path string) resource.PropertyValue {
	t.Helper()
	v, ok := lookup(resource.NewObjectProperty(pm), path)
	require.Truef(t, ok, "no %s in %v", path, pm)
	return v
}

func lookup(v resource.PropertyValue, path string) (resource.PropertyValue, bool) {
	for _, step := range strings.Split(path, ".") {
		idx := -1
		if m := indexRe.FindStringSubmatch(step); m != nil {
			step = m[1]
			idx, _ = strconv.Atoi(m[2])
		}
		v = unsecret(v)
		if !v.IsObject() {
			return v, false
		}
		next, ok := v.ObjectValue()[resource.PropertyKey(step)]
		if !ok {
			return v, false
		}
		v = unsecret(next)
		if idx >= 0 {
			if !v.IsArray() || idx >= len(v.ArrayValue()) {
				return v, false
			}
			v = unsecret(v.ArrayValue()[idx])
		}
	}
	return unsecret(v), true
}

func unsecret(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

// has reports whether path exists.
func has(pm resource.PropertyMap, path string) bool {
	_, ok := lookup(resource.NewObjectProperty(pm), path)
	return ok
}

// isSecret reports whether the value of key in the object at path is a
// Pulumi secret, itself or through the object holding it (the Kubernetes SDK
// marks a Secret's whole stringData as secret).
func isSecret(t *testing.T, pm resource.PropertyMap, path, key string) bool {
	t.Helper()
	v := resource.NewObjectProperty(pm)
	for _, step := range strings.Split(path, ".") {
		require.Truef(t, unsecret(v).IsObject(), "no %s", path)
		next, ok := unsecret(v).ObjectValue()[resource.PropertyKey(step)]
		require.Truef(t, ok, "no %s", path)
		if next.IsSecret() {
			return true
		}
		v = next
	}
	e, ok := unsecret(v).ObjectValue()[resource.PropertyKey(key)]
	require.Truef(t, ok, "no %s[%s]", path, key)
	return e.IsSecret()
}

// str returns the string at path.
func str(t *testing.T, pm resource.PropertyMap, path string) string {
	t.Helper()
	v := get(t, pm, path)
	require.Truef(t, v.IsString(), "%s is %v, not a string", path, v)
	return v.StringValue()
}

// num returns the number at path.
func num(t *testing.T, pm resource.PropertyMap, path string) float64 {
	t.Helper()
	v := get(t, pm, path)
	require.Truef(t, v.IsNumber(), "%s is %v, not a number", path, v)
	return v.NumberValue()
}

// strMap returns the string map at path (keys may contain dots).
func strMap(t *testing.T, pm resource.PropertyMap, path string) map[string]string {
	t.Helper()
	v := get(t, pm, path)
	require.Truef(t, v.IsObject(), "%s is %v, not an object", path, v)
	out := map[string]string{}
	for k, e := range v.ObjectValue() {
		e = unsecret(e)
		if e.IsString() {
			out[string(k)] = e.StringValue()
		}
	}
	return out
}

// items returns the array at path.
func items(t *testing.T, pm resource.PropertyMap, path string) []resource.PropertyMap {
	t.Helper()
	v := get(t, pm, path)
	require.Truef(t, v.IsArray(), "%s is %v, not an array", path, v)
	var out []resource.PropertyMap
	for _, e := range v.ArrayValue() {
		e = unsecret(e)
		if e.IsObject() {
			out = append(out, e.ObjectValue())
		}
	}
	return out
}

// byName picks the element of list whose "name" is name.
func byName(t *testing.T, list []resource.PropertyMap, name string) resource.PropertyMap {
	t.Helper()
	for _, e := range list {
		if n, ok := e["name"]; ok && unsecret(n).IsString() && unsecret(n).StringValue() == name {
			return e
		}
	}
	require.Failf(t, "no element named", "%q in %v", name, list)
	return nil
}

// strs returns the string array at path.
func strs(t *testing.T, pm resource.PropertyMap, path string) []string {
	t.Helper()
	v := get(t, pm, path)
	require.Truef(t, v.IsArray(), "%s is %v, not an array", path, v)
	var out []string
	for _, e := range v.ArrayValue() {
		out = append(out, unsecret(e).StringValue())
	}
	return out
}

// Type tokens of the children.
const (
	tStatefulSet = "kubernetes:apps/v1:StatefulSet"
	tService     = "kubernetes:core/v1:Service"
	tConfigMap   = "kubernetes:core/v1:ConfigMap"
	tSecret      = "kubernetes:core/v1:Secret"
	tSA          = "kubernetes:core/v1:ServiceAccount"
	tNamespace   = "kubernetes:core/v1:Namespace"
	tRole        = "kubernetes:rbac.authorization.k8s.io/v1:Role"
	tRoleBinding = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
	tPDB         = "kubernetes:policy/v1:PodDisruptionBudget"
	tNetPol      = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
	tSvcMonitor  = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
	tCRD         = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
)
