package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/warrenmq/warren/stack"
)

// requireToolchain fails (never skips) when the pulumi CLI or the
// Kubernetes provider plugin is missing, saying how to get them.
func requireToolchain(t *testing.T) {
	t.Helper()
	const fix = "run `eval \"$(scripts/pulumi-toolchain.sh --print-env)\"` in the repository first (`make test` does)"
	if _, err := exec.LookPath("pulumi"); err != nil {
		t.Fatalf("the pulumi CLI is not on PATH: %s", fix)
	}
	out, err := exec.Command("pulumi", "plugin", "ls", "--json").Output()
	require.NoError(t, err, "pulumi plugin ls: %s", fix)
	var plugins []struct{ Name, Kind, Version string }
	require.NoError(t, json.Unmarshal(out, &plugins))
	for _, p := range plugins {
		if p.Name == "kubernetes" && p.Kind == "resource" && p.Version == "4.25.0" {
			return
		}
	}
	t.Fatalf("the kubernetes resource plugin v4.25.0 is not installed (have %v): %s", plugins, fix)
}

// stackProject copies the repository's Pulumi project files into a temp
// directory, so tests never write the real stack files, and returns the
// common flags pointing at it and at a temp backend.
func stackProject(t *testing.T) (dir string, flags []string) {
	t.Helper()
	dir = t.TempDir()
	for _, f := range []string{"Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
	}
	t.Setenv("PULUMI_CONFIG_PASSPHRASE", "warren-test-passphrase")
	return dir, []string{"--project-dir", dir, "--backend", "file://" + filepath.Join(dir, "state")}
}

// manifest is one rendered Kubernetes object.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Type       string            `yaml:"type"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       map[string]any    `yaml:"spec"`
	Rules      []map[string]any  `yaml:"rules"`
	RoleRef    map[string]any    `yaml:"roleRef"`
}

// secret returns a rendered Secret's value: the provider writes it base64
// encoded under data, which is still plain text to anyone reading the file.
func (m manifest) secret(t *testing.T, key string) string {
	t.Helper()
	if v, ok := m.StringData[key]; ok {
		return v
	}
	v, ok := m.Data[key]
	require.Truef(t, ok, "%s/%s has no %s", m.Kind, m.Metadata.Name, key)
	b, err := base64.StdEncoding.DecodeString(v)
	require.NoError(t, err)
	return string(b)
}

// readManifests parses every YAML document under dir, by "Kind/name".
func readManifests(t *testing.T, dir string) map[string]manifest {
	t.Helper()
	out := map[string]manifest{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m manifest
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
			if m.Kind != "" {
				out[m.Kind+"/"+m.Metadata.Name] = m
			}
		}
	})
	require.NoError(t, err)
	return out
}

// dig walks nested maps and lists ("containers", "0", "image").
func dig(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			v, ok = x[p]
			require.Truef(t, ok, "no %s in %v", p, x)
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			require.Less(t, i, len(x))
			v = x[i]
		default:
			t.Fatalf("cannot take %s of %v", p, v)
		}
	}
	return v
}

type initReport struct {
	Generated []string `json:"generated"`
	Kept      []string `json:"kept"`
}

func runInit(t *testing.T, args ...string) initReport {
	t.Helper()
	code, out, stderr := warren(t, append([]string{"init", "-o", "json"}, args...)...)
	require.Equal(t, 0, code, stderr)
	var r initReport
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	return r
}

func TestRenderDevStack(t *testing.T) {
	requireToolchain(t)
	dir, flags := stackProject(t)

	r := runInit(t, append([]string{"--stack", "dev"}, flags...)...)
	assert.Equal(t, []string{"warren:adminPassword", "warren:erlangCookie"}, r.Generated)
	settings, err := os.ReadFile(filepath.Join(dir, "Pulumi.dev.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(settings), "encryptionsalt:")
	assert.Regexp(t, `warren:erlangCookie:\s+secure: `, string(settings), "secrets are stored encrypted")
	assert.Regexp(t, `warren:adminPassword:\s+secure: `, string(settings))

	// A second init keeps everything: values are stable across runs.
	r = runInit(t, append([]string{"--stack", "dev"}, flags...)...)
	assert.Empty(t, r.Generated)
	assert.Equal(t, []string{"warren:adminPassword", "warren:erlangCookie"}, r.Kept)
	again, err := os.ReadFile(filepath.Join(dir, "Pulumi.dev.yaml"))
	require.NoError(t, err)
	assert.Equal(t, string(settings), string(again))

	out := filepath.Join(dir, "rendered")
	code, stdout, stderr := warren(t, append([]string{"render", "--stack", "dev", "--dir", out}, flags...)...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "plain text")
	m := readManifests(t, out)

	sts, ok := m["StatefulSet/rabbitmq-server"]
	require.True(t, ok, "rendered: %v", keys(m))
	assert.Equal(t, "rabbitmq-dev", sts.Metadata.Namespace)
	assert.Equal(t, 3, dig(t, sts.Spec, "replicas"))
	assert.Equal(t, "Parallel", dig(t, sts.Spec, "podManagementPolicy"))
	assert.Equal(t, "rabbitmq-nodes", dig(t, sts.Spec, "serviceName"))
	assert.Equal(t, "2Gi", dig(t, sts.Spec, "volumeClaimTemplates", "0", "spec", "resources", "requests", "storage"))
	assert.NotNil(t, dig(t, sts.Spec, "template", "spec", "affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution"))

	headless := m["Service/rabbitmq-nodes"]
	assert.Equal(t, "None", headless.Spec["clusterIP"])
	assert.Equal(t, true, headless.Spec["publishNotReadyAddresses"])
	client := m["Service/rabbitmq"]
	assert.Equal(t, "ClusterIP", client.Spec["type"])
	assert.Len(t, client.Spec["ports"], 3)

	cm := m["ConfigMap/rabbitmq-server-conf"]
	assert.Contains(t, cm.Data["rabbitmq.conf"], "cluster_formation.peer_discovery_backend = rabbit_peer_discovery_k8s")
	assert.Contains(t, cm.Data["enabled_plugins"], "rabbitmq_shovel")

	cookie := m["Secret/rabbitmq-erlang-cookie"]
	assert.Len(t, cookie.secret(t, ".erlang.cookie"), 52, "a generated 52-character cookie, in plain text")
	admin := m["Secret/rabbitmq-default-user"]
	assert.Equal(t, "admin", admin.secret(t, "username"))
	assert.Len(t, admin.secret(t, "password"), 26)
	_, hasTLS := m["Secret/rabbitmq-tls"]
	assert.False(t, hasTLS, "dev has no TLS")

	assert.Contains(t, m, "ServiceAccount/rabbitmq-server")
	role := m["Role/rabbitmq-peer-discovery"]
	assert.Equal(t, []any{"endpoints"}, role.Rules[0]["resources"])
	assert.Equal(t, "rabbitmq-peer-discovery", m["RoleBinding/rabbitmq-server"].RoleRef["name"])
	assert.Equal(t, 1, m["PodDisruptionBudget/rabbitmq-server"].Spec["maxUnavailable"])
	assert.Contains(t, m, "Namespace/rabbitmq-dev")
	app := m["Secret/rabbitmq-app"]
	assert.Equal(t, "servicebinding.io/rabbitmq", app.Type)
	assert.Equal(t, "rabbitmq.rabbitmq-dev.svc", app.secret(t, "host"))
	assert.Equal(t, "admin", app.secret(t, "username"), "dev has no application user: the admin's credentials")
	assert.Equal(t, admin.secret(t, "password"), app.secret(t, "password"))
	assert.NotContains(t, m, "NetworkPolicy/rabbitmq-server", "dev: NetworkPolicy off")
	assert.Contains(t, cm.Data["rabbitmq.conf"], "queue_leader_locator = balanced")
	assert.Len(t, m, 12, "rendered: %v", keys(m))
}

func TestRenderProdStack(t *testing.T) {
	requireToolchain(t)
	dir, flags := stackProject(t)

	r := runInit(t, append([]string{"--stack", "prod"}, flags...)...)
	assert.Equal(t, []string{"warren:adminPassword", "warren:erlangCookie", "warren:tlsCaCert", "warren:tlsCaKey", "warren:tlsCert", "warren:tlsKey"}, r.Generated)
	r = runInit(t, append([]string{"--stack", "prod"}, flags...)...)
	assert.Empty(t, r.Generated, "the certificate still covers every name: kept")

	out := filepath.Join(dir, "rendered")
	code, _, stderr := warren(t, append([]string{"render", "--stack", "prod", "--dir", out}, flags...)...)
	require.Equal(t, 0, code, stderr)
	m := readManifests(t, out)

	sts := m["StatefulSet/rabbitmq-server"]
	assert.Equal(t, "rabbitmq", sts.Metadata.Namespace)
	assert.Equal(t, "100Gi", dig(t, sts.Spec, "volumeClaimTemplates", "0", "spec", "resources", "requests", "storage"))
	assert.NotNil(t, dig(t, sts.Spec, "template", "spec", "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"))
	assert.Equal(t, 5671, dig(t, sts.Spec, "template", "spec", "containers", "0", "readinessProbe", "tcpSocket", "port"))

	conf := m["ConfigMap/rabbitmq-server-conf"].Data["rabbitmq.conf"]
	assert.Contains(t, conf, "listeners.tcp = none")
	assert.Contains(t, conf, "listeners.ssl.default = 5671")

	tls, ok := m["Secret/rabbitmq-tls"]
	require.True(t, ok, "rendered: %v", keys(m))
	assert.Equal(t, "kubernetes.io/tls", tls.Type)
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		assert.NotEmpty(t, tls.secret(t, k), k)
	}
	// The generated certificate chains to the generated CA for the Services
	// and every pod.
	leafBlock, _ := pem.Decode([]byte(tls.secret(t, "tls.crt")))
	require.NotNil(t, leafBlock)
	leaf, err := x509.ParseCertificate(leafBlock.Bytes)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM([]byte(tls.secret(t, "ca.crt"))))
	for _, host := range []string{
		"rabbitmq.rabbitmq.svc", "rabbitmq.rabbitmq.svc.cluster.local", "rabbitmq-nodes.rabbitmq.svc.cluster.local",
		"rabbitmq-server-0.rabbitmq-nodes.rabbitmq", "rabbitmq-server-1.rabbitmq-nodes.rabbitmq.svc",
		"rabbitmq-server-2.rabbitmq-nodes.rabbitmq.svc.cluster.local",
	} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots})
		assert.NoError(t, err, host)
	}
	client := m["Service/rabbitmq"]
	names := []string{}
	for _, p := range client.Spec["ports"].([]any) {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	assert.ElementsMatch(t, []string{"amqps", "management-tls", "prometheus-tls"}, names)
	assert.Contains(t, m, "PodDisruptionBudget/rabbitmq-server")
	assert.Contains(t, m, "Role/rabbitmq-peer-discovery")

	// prod restricts traffic: a NetworkPolicy on the StatefulSet's pods, TLS
	// ports only, epmd and distribution only between the pods.
	np, ok := m["NetworkPolicy/rabbitmq-server"]
	require.True(t, ok, "prod renders its NetworkPolicy: %v", keys(m))
	assert.Equal(t, "rabbitmq", np.Metadata.Namespace)
	assert.Equal(t, dig(t, sts.Spec, "selector", "matchLabels"), dig(t, np.Spec, "podSelector", "matchLabels"))
	assert.Equal(t, []any{"Ingress"}, np.Spec["policyTypes"])
	ingress := np.Spec["ingress"].([]any)
	require.Len(t, ingress, 4)
	assert.Equal(t, 4369, dig(t, ingress[0], "ports", "0", "port"))
	assert.Equal(t, 25672, dig(t, ingress[0], "ports", "1", "port"))
	assert.Equal(t, dig(t, sts.Spec, "selector", "matchLabels"), dig(t, ingress[0], "from", "0", "podSelector", "matchLabels"))
	assert.Equal(t, 5671, dig(t, ingress[1], "ports", "0", "port"))
	assert.Len(t, dig(t, ingress[1], "ports"), 1, "no plain AMQP in prod")
	assert.Equal(t, 15691, dig(t, ingress[3], "ports", "0", "port"))
	assert.Equal(t, []any{"monitoring"}, dig(t, ingress[3], "from", "1", "namespaceSelector", "matchExpressions", "0", "values"))

	app := m["Secret/rabbitmq-app"]
	assert.Equal(t, "servicebinding.io/rabbitmq", app.Type)
	assert.Equal(t, "5671", app.secret(t, "port"))
	assert.Equal(t, tls.secret(t, "ca.crt"), app.secret(t, "ca.crt"), "with TLS the binding carries the CA")
	assert.True(t, strings.HasPrefix(app.secret(t, "uri"), "amqps://admin:"), "prod has no application user: the admin's credentials")
	annotations := dig(t, sts.Spec, "template", "metadata", "annotations")
	assert.Equal(t, "15691", dig(t, annotations, "prometheus.io/port"))
	assert.Equal(t, "https", dig(t, annotations, "prometheus.io/scheme"))
}

// Bad settings are refused with exit code 2 before Pulumi runs.
func TestStackCommandsRefuseBadSettings(t *testing.T) {
	dir, flags := stackProject(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.bad.yaml"), []byte("config:\n  warren:replicas: 2\n  warren:memoryLimit: 100Mi\n"), 0o600))
	for _, cmd := range []string{"init", "preview", "up", "destroy", "render"} {
		args := append([]string{cmd, "--stack", "bad"}, flags...)
		if cmd == "render" {
			args = append(args, "--dir", filepath.Join(dir, "out"))
		}
		code, _, stderr := warren(t, args...)
		assert.Equal(t, exitUsage, code, cmd)
		assert.Contains(t, stderr, "warren:replicas", cmd)
		assert.Contains(t, stderr, "warren:memoryLimit", cmd)
	}
	assert.NoDirExists(t, filepath.Join(dir, "state"))
	assert.NoDirExists(t, filepath.Join(dir, "out"))
}

func keys(m map[string]manifest) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	return k
}

// init --tls turns TLS on in the stack file and generates the CA and the
// server certificate; a second run keeps them.
func TestInitTLSFlag(t *testing.T) {
	requireToolchain(t)
	dir, flags := stackProject(t)
	r := runInit(t, append([]string{"--stack", "dev", "--tls"}, flags...)...)
	assert.Equal(t, []string{"warren:adminPassword", "warren:erlangCookie", "warren:tlsCaCert", "warren:tlsCaKey", "warren:tlsCert", "warren:tlsKey"}, r.Generated)
	settings, err := os.ReadFile(filepath.Join(dir, "Pulumi.dev.yaml"))
	require.NoError(t, err)
	assert.Regexp(t, `warren:tlsEnabled: "?true"?`, string(settings))
	assert.NotContains(t, string(settings), "BEGIN", "certificates and keys are stored encrypted")

	r = runInit(t, append([]string{"--stack", "dev"}, flags...)...)
	assert.Empty(t, r.Generated)
	assert.Len(t, r.Kept, 6)
}

// render writes plain-text Secrets, so where is never guessed.
func TestRenderNeedsDir(t *testing.T) {
	_, flags := stackProject(t)
	code, _, stderr := warren(t, append([]string{"render", "--stack", "dev"}, flags...)...)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "--dir is required")
}

// up names the applications' Secret and how to read it, never its values.
func TestUpReportNamesAppSecret(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, writeUpReport(&out, &stack.UpResult{
		Stack:   "dev",
		Changes: stack.Changes{"create": 14},
		Outputs: map[string]string{"appSecretName": "rabbitmq-app", "namespace": "mq", "amqpUrl": "amqp://rabbitmq.mq.svc:5672/"},
	}))
	s := out.String()
	assert.Contains(t, s, "stack dev: 14 create\n")
	assert.Regexp(t, `(?m)^appSecretName\s+rabbitmq-app$`, s)
	assert.Contains(t, s, "Secret mq/rabbitmq-app")
	assert.Contains(t, s, "kubectl -n mq get secret rabbitmq-app")
}

// With an application user, init generates its password, and the rendered
// cluster declares it in the definitions every node imports at boot and
// hands it to applications in the binding Secret.
func TestRenderAppUserStack(t *testing.T) {
	requireToolchain(t)
	dir, flags := stackProject(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.apps.yaml"), []byte(`config:
  warren:namespace: shop
  warren:appUsername: shop-app
  warren:appVhost: shop
  warren:appReadPermission: "^shop\\."
  warren:networkPolicy: true
  warren:networkPolicyAmqpNamespaces: [storefront]
`), 0o600))
	r := runInit(t, append([]string{"--stack", "apps"}, flags...)...)
	assert.Equal(t, []string{"warren:adminPassword", "warren:appPassword", "warren:erlangCookie"}, r.Generated)

	out := filepath.Join(dir, "rendered")
	code, _, stderr := warren(t, append([]string{"render", "--stack", "apps", "--dir", out}, flags...)...)
	require.Equal(t, 0, code, stderr)
	m := readManifests(t, out)

	app := m["Secret/rabbitmq-app"]
	pw := app.secret(t, "password")
	assert.Len(t, pw, 26, "generated like the admin password")
	assert.Equal(t, "shop-app", app.secret(t, "username"))
	assert.Equal(t, "shop", app.secret(t, "vhost"))
	assert.Equal(t, "amqp://shop-app:"+pw+"@rabbitmq.shop.svc:5672/shop", app.secret(t, "uri"))

	defs := m["Secret/rabbitmq-definitions"]
	var file struct {
		Users       []struct{ Name, Password string }
		Permissions []struct{ User, Vhost, Read string }
	}
	require.NoError(t, json.Unmarshal([]byte(defs.secret(t, "definitions.json")), &file))
	require.Len(t, file.Users, 2)
	assert.Equal(t, "shop-app", file.Users[1].Name)
	assert.Equal(t, pw, file.Users[1].Password, "the Secret and the definitions agree")
	last := file.Permissions[len(file.Permissions)-1]
	assert.Equal(t, "shop-app", last.User)
	assert.Equal(t, `^shop\.`, last.Read)
	assert.Contains(t, m["ConfigMap/rabbitmq-server-conf"].Data["rabbitmq.conf"], "load_definitions = /etc/warren/definitions/definitions.json")

	np := m["NetworkPolicy/rabbitmq-server"]
	amqp := np.Spec["ingress"].([]any)[1]
	assert.Equal(t, []any{"storefront"}, dig(t, amqp, "from", "1", "namespaceSelector", "matchExpressions", "0", "values"))
}

// up prints the quorum leaders per node before and after its rebalance,
// or, when it could not rebalance, why and the command that does it by
// hand.
func TestUpReportShowsRebalance(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, writeUpReport(&out, &stack.UpResult{Stack: "local", Changes: stack.Changes{"update": 1}, Rebalance: &stack.Rebalance{
		Status: stack.RebalanceDone, API: "http://10.96.0.7:15672 (the client Service's ClusterIP)", Queues: 12,
		Before: map[string]int{"rabbit@rabbitmq-server-0.rabbitmq-nodes.mq": 0, "rabbit@rabbitmq-server-1.rabbitmq-nodes.mq": 5, "rabbit@rabbitmq-server-2.rabbitmq-nodes.mq": 7},
		After:  map[string]int{"rabbit@rabbitmq-server-0.rabbitmq-nodes.mq": 4, "rabbit@rabbitmq-server-1.rabbitmq-nodes.mq": 4, "rabbit@rabbitmq-server-2.rabbitmq-nodes.mq": 4},
	}}))
	s := out.String()
	assert.Contains(t, s, "quorum leaders rebalanced (12 quorum queues, through http://10.96.0.7:15672 (the client Service's ClusterIP)):")
	assert.Regexp(t, `(?m)^\s+NODE\s+BEFORE\s+AFTER$`, s)
	assert.Regexp(t, `(?m)^\s+rabbit@rabbitmq-server-0\s+0\s+4$`, s)
	assert.Regexp(t, `(?m)^\s+rabbit@rabbitmq-server-2\s+7\s+4$`, s)

	out.Reset()
	require.NoError(t, writeUpReport(&out, &stack.UpResult{Stack: "local", Rebalance: &stack.Rebalance{
		Status: stack.RebalanceNotDone, Reason: "the cluster's HTTP API is not reachable from this machine",
		Manual: "kubectl -n mq exec rabbitmq-server-0 -c rabbitmq -- rabbitmq-queues rebalance quorum",
	}}))
	s = out.String()
	assert.Contains(t, s, "quorum leaders NOT rebalanced: the cluster's HTTP API is not reachable from this machine")
	assert.Contains(t, s, "by hand: kubectl -n mq exec rabbitmq-server-0 -c rabbitmq -- rabbitmq-queues rebalance quorum")

	out.Reset()
	require.NoError(t, writeUpReport(&out, &stack.UpResult{Stack: "local", Rebalance: &stack.Rebalance{Status: stack.RebalanceSkipped, Reason: "no pod was restarted, added or removed"}}))
	assert.Contains(t, out.String(), "quorum leaders: not rebalanced: no pod was restarted, added or removed")
}
