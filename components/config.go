package components

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Namespace is the config namespace of every setting: `warren:replicas` in
// Pulumi.<stack>.yaml. It is fixed rather than taken from the project name so
// the keys stay the same however the program is run (tests use mocks with
// another project name).
const Namespace = "warren"

// Config keys of the secrets that `warren init` fills.
const (
	KeyErlangCookie  = "erlangCookie"
	KeyAdminPassword = "adminPassword"
	KeyTLSCert       = "tlsCert"
	KeyTLSKey        = "tlsKey"
	KeyTLSCACert     = "tlsCaCert"
	KeyTLSCAKey      = "tlsCaKey"
)

// Setting documents one config key: its default and what it does. Settings
// is the single list that ParseConfig reads and the README's table mirrors.
type Setting struct {
	Key, Default, Doc string
}

// Settings lists every plain setting, with its default.
var Settings = []Setting{
	{"name", "rabbitmq", "cluster name; prefix of every object name, RabbitMQ's cluster_name"},
	{"namespace", "default", "Kubernetes namespace of every object"},
	{"createNamespace", "false", "create the namespace too"},
	{"replicas", "3", "number of RabbitMQ nodes; odd, at least 1"},
	{"allowEvenReplicas", "false", "accept an even replica count (it tolerates no more failures than one node fewer)"},
	{"image", "rabbitmq:3.13-management", "container image"},
	{"imagePullPolicy", "IfNotPresent", "Always, IfNotPresent or Never (Never for images loaded into the nodes by hand)"},
	{"command", "", "container command as a list, when the image's entrypoint does not start RabbitMQ"},
	{"runAsUser", "999", "uid RabbitMQ runs as (999 is the official image's rabbitmq user)"},
	{"fsGroup", "999", "gid that owns the volumes"},
	{"cpuRequest", "1", "CPU request per node"},
	{"cpuLimit", "2", "CPU limit per node; empty for none"},
	{"memoryLimit", "2Gi", "memory limit per node; RabbitMQ sizes itself from it"},
	{"memoryRequest", "", "memory request per node; empty means the limit"},
	{"memoryHighWatermark", "0.4", "fraction of the node's memory at which RabbitMQ blocks publishers"},
	{"storageSize", "10Gi", "persistent volume per node"},
	{"storageClass", "", "StorageClass of the volumes; empty for the cluster's default"},
	{"diskFreeLimit", "2Gi", "free disk below which RabbitMQ blocks publishers; must be below storageSize"},
	{"antiAffinity", "preferred", "spread pods over nodes: preferred or required"},
	{"terminationGracePeriodSeconds", "604800", "how long a stopping pod may take; the preStop hook waits for quorum queues within it"},
	{"serviceType", "ClusterIP", "type of the client Service: ClusterIP, NodePort or LoadBalancer"},
	{"clusterDomain", "cluster.local", "the Kubernetes cluster's DNS domain (for certificate names)"},
	{"defaultQueueType", "quorum", "default queue type; empty to leave RabbitMQ's default (images older than 3.13 lack the setting)"},
	{"additionalPlugins", "", "plugins to enable besides the default set, as a list"},
	{"adminUsername", "admin", "the admin user created on first boot"},
	{"tlsEnabled", "false", "serve AMQPS 5671 and HTTPS 15671"},
	{"tlsSecretName", "", "an existing kubernetes.io/tls Secret (with ca.crt) to use instead of the tls* secrets"},
	{"disablePlainListeners", "false", "with TLS, turn off AMQP 5672, HTTP 15672 and Prometheus 15692"},
}

// defaults indexes Settings by key.
var defaults = func() map[string]string {
	m := make(map[string]string, len(Settings))
	for _, s := range Settings {
		m[s.Key] = s.Default
	}
	return m
}()

// Lookup returns the value of key (without the "warren:" prefix), whether it
// is set, and whether it is stored as a secret.
type Lookup func(key string) (value string, ok, secret bool)

// ContextLookup reads settings from a Pulumi program's config.
func ContextLookup(ctx *pulumi.Context) Lookup {
	return func(key string) (string, bool, bool) {
		full := Namespace + ":" + key
		v, ok := ctx.GetConfig(full)
		return v, ok, ctx.IsConfigSecret(full)
	}
}

// MapLookup reads settings from a map of full keys ("warren:replicas") to
// values; secret lists the keys stored as secrets.
func MapLookup(values map[string]string, secret map[string]bool) Lookup {
	return func(key string) (string, bool, bool) {
		full := Namespace + ":" + key
		v, ok := values[full]
		return v, ok, secret[full]
	}
}

// Config is a validated cluster configuration. Secret values are kept out of
// fmt's reach (see Secrets).
type Config struct {
	Name              string
	Namespace         string
	CreateNamespace   bool
	Replicas          int
	AllowEvenReplicas bool

	Image           string
	ImagePullPolicy string
	Command         []string
	RunAsUser       int64
	FSGroup         int64

	CPURequest    resource.Quantity
	CPULimit      *resource.Quantity // nil: no limit
	MemoryRequest resource.Quantity
	MemoryLimit   resource.Quantity
	// MemoryHighWatermark is vm_memory_high_watermark.relative.
	MemoryHighWatermark float64

	StorageSize   resource.Quantity
	StorageClass  string
	DiskFreeLimit resource.Quantity

	AntiAffinity                  string // "preferred" or "required"
	TerminationGracePeriodSeconds int64
	ServiceType                   string
	ClusterDomain                 string
	DefaultQueueType              string
	AdditionalPlugins             []string
	AdminUsername                 string

	TLSEnabled            bool
	TLSSecretName         string
	DisablePlainListeners bool

	// Secrets holds the secret settings; zero values mean "not set".
	Secrets Secrets
}

// Secrets are the settings stored as Pulumi secrets. Its String method hides
// the values, so a Config printed by mistake leaks nothing.
type Secrets struct {
	ErlangCookie, AdminPassword string
	TLSCert, TLSKey, TLSCACert  string
}

// String hides the values.
func (Secrets) String() string { return "Secrets{...}" }

// GoString hides the values from %#v too.
func (Secrets) GoString() string { return "Secrets{...}" }

// Names returns the names derived from the cluster name and namespace.
func (c *Config) Names() Names { return NewNames(c.Name, c.Namespace) }

// Headroom the Erlang VM needs above RabbitMQ's own accounting, as the
// operator does: a fifth of the memory limit, at most 2 GiB. Without it a
// node reaching its watermark can still be OOM-killed.
func removeHeadroom(limit int64) int64 {
	const gib = int64(1) << 30
	if limit/5 > 2*gib {
		return limit - 2*gib
	}
	return limit - limit/5
}

// TotalMemoryAvailable is total_memory_available_override_value in bytes:
// the memory limit less the VM's headroom.
func (c *Config) TotalMemoryAvailable() int64 { return removeHeadroom(c.MemoryLimit.Value()) }

// minBrokerMemory is the least memory below the watermark that lets a node
// boot with its plugins and still accept publishes.
const minBrokerMemory = int64(128) << 20

// ParseConfig reads and validates every plain setting. It reports every bad
// value at once, each with its key and what to do. Secrets are read but not
// required; CheckSecrets does that.
func ParseConfig(lookup Lookup) (*Config, error) {
	p := parser{lookup: lookup}
	c := &Config{}

	c.Name = p.str("name")
	if !dns1035Label.MatchString(c.Name) {
		p.fail("name", c.Name, "want lower-case letters, digits and '-', starting with a letter")
	} else if len(c.Name) > maxClusterNameLen {
		p.fail("name", c.Name, "at most %d characters, so derived names (%s-0) fit Kubernetes' limits", maxClusterNameLen, NewNames(c.Name, "").StatefulSet())
	}
	c.Namespace = p.str("namespace")
	if !dns1123Label.MatchString(c.Namespace) || len(c.Namespace) > 63 {
		p.fail("namespace", c.Namespace, "want at most 63 lower-case letters, digits and '-'")
	}
	c.CreateNamespace = p.boolean("createNamespace")

	c.Replicas = p.integer("replicas")
	c.AllowEvenReplicas = p.boolean("allowEvenReplicas")
	switch {
	case c.Replicas < 1:
		p.fail("replicas", strconv.Itoa(c.Replicas), "a cluster needs at least 1 node (3 for high availability)")
	case c.Replicas%2 == 0 && !c.AllowEvenReplicas:
		p.fail("replicas", strconv.Itoa(c.Replicas),
			"an even count tolerates no more node failures than %d and can split quorum votes evenly; use %d or %d, or set warren:allowEvenReplicas: true",
			c.Replicas-1, c.Replicas-1, c.Replicas+1)
	}

	c.Image = p.str("image")
	if c.Image == "" || strings.ContainsAny(c.Image, " \t\n") {
		p.fail("image", c.Image, "want an image reference like rabbitmq:3.13-management")
	}
	c.ImagePullPolicy = p.oneOf("imagePullPolicy", "Always", "IfNotPresent", "Never")
	c.Command = p.list("command")
	c.RunAsUser = p.id("runAsUser")
	c.FSGroup = p.id("fsGroup")

	c.CPURequest = p.quantity("cpuRequest")
	if p.str("cpuLimit") != "" {
		l := p.quantity("cpuLimit")
		c.CPULimit = &l
		if c.CPURequest.Cmp(l) > 0 {
			p.fail("cpuRequest", c.CPURequest.String(), "above warren:cpuLimit %s", l.String())
		}
	}
	c.MemoryLimit = p.quantity("memoryLimit")
	c.MemoryRequest = c.MemoryLimit
	if p.str("memoryRequest") != "" {
		c.MemoryRequest = p.quantity("memoryRequest")
		if c.MemoryRequest.Cmp(c.MemoryLimit) > 0 {
			p.fail("memoryRequest", c.MemoryRequest.String(), "above warren:memoryLimit %s", c.MemoryLimit.String())
		}
	}
	c.MemoryHighWatermark = p.fraction("memoryHighWatermark")
	if lim := c.MemoryLimit.Value(); lim > 0 && c.MemoryHighWatermark > 0 {
		usable := int64(float64(removeHeadroom(lim)) * c.MemoryHighWatermark)
		if usable < minBrokerMemory {
			// The smallest limit that passes, in Mi: limit × 0.8 × watermark ≥ minimum.
			needMi := int64(math.Ceil(float64(minBrokerMemory>>20)/(0.8*c.MemoryHighWatermark) - 1e-9))
			p.fail("memoryLimit", c.MemoryLimit.String(),
				"too small for warren:memoryHighWatermark %g: RabbitMQ would block publishers at %dMi (limit less 20%% headroom, times the watermark), below the %dMi a node needs; raise memoryLimit to at least %dMi or the watermark",
				c.MemoryHighWatermark, usable>>20, minBrokerMemory>>20, needMi)
		}
	}

	c.StorageSize = p.quantity("storageSize")
	c.StorageClass = p.str("storageClass")
	c.DiskFreeLimit = p.quantity("diskFreeLimit")
	if !c.StorageSize.IsZero() && c.DiskFreeLimit.Cmp(c.StorageSize) >= 0 {
		p.fail("diskFreeLimit", c.DiskFreeLimit.String(),
			"not below warren:storageSize %s: RabbitMQ would block publishers from the start", c.StorageSize.String())
	}

	c.AntiAffinity = p.oneOf("antiAffinity", "preferred", "required")
	c.TerminationGracePeriodSeconds = int64(p.integer("terminationGracePeriodSeconds"))
	if c.TerminationGracePeriodSeconds < 30 {
		p.fail("terminationGracePeriodSeconds", strconv.FormatInt(c.TerminationGracePeriodSeconds, 10),
			"at least 30: the preStop hook needs time to hand quorum queue leadership over")
	}
	c.ServiceType = p.oneOf("serviceType", "ClusterIP", "NodePort", "LoadBalancer")
	c.ClusterDomain = p.str("clusterDomain")
	if !dns1123Subdomain.MatchString(c.ClusterDomain) {
		p.fail("clusterDomain", c.ClusterDomain, "want a DNS name like cluster.local")
	}
	if c.DefaultQueueType = p.str("defaultQueueType"); c.DefaultQueueType != "" {
		c.DefaultQueueType = p.oneOf("defaultQueueType", "quorum", "classic", "stream")
	}
	c.AdditionalPlugins = p.list("additionalPlugins")
	for _, pl := range c.AdditionalPlugins {
		if !strings.HasPrefix(pl, "rabbitmq_") || strings.ContainsAny(pl, " \t\n.,") {
			p.fail("additionalPlugins", pl, "not a plugin name like rabbitmq_mqtt")
		}
	}
	c.AdminUsername = p.str("adminUsername")
	if c.AdminUsername == "" || !confSafe(c.AdminUsername) {
		p.fail("adminUsername", c.AdminUsername, "want a non-empty name without spaces or '#'")
	}

	c.TLSEnabled = p.boolean("tlsEnabled")
	c.TLSSecretName = p.str("tlsSecretName")
	c.DisablePlainListeners = p.boolean("disablePlainListeners")
	if c.DisablePlainListeners && !c.TLSEnabled {
		p.fail("disablePlainListeners", "true", "needs warren:tlsEnabled: true, or the cluster would have no listener")
	}
	if c.TLSSecretName != "" {
		if !dns1123Subdomain.MatchString(c.TLSSecretName) {
			p.fail("tlsSecretName", c.TLSSecretName, "not a Secret name (lower-case letters, digits, '-' and '.')")
		}
	}

	c.Secrets = Secrets{
		ErlangCookie:  p.secret(KeyErlangCookie),
		AdminPassword: p.secret(KeyAdminPassword),
		TLSCert:       p.secret(KeyTLSCert),
		TLSKey:        p.secret(KeyTLSKey),
		TLSCACert:     p.secret(KeyTLSCACert),
	}
	if pw := c.Secrets.AdminPassword; pw != "" && !confSafe(pw) {
		p.failSecret(KeyAdminPassword, "must not contain spaces, '#' or control characters (it goes into a rabbitmq.conf line); run `warren init` after removing it to get a generated one")
	}
	if ck := c.Secrets.ErlangCookie; ck != "" && (len(ck) < 20 || len(ck) > 255 || !confSafe(ck)) {
		p.failSecret(KeyErlangCookie, "must be 20 to 255 printable characters without spaces")
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, fmt.Errorf("invalid stack configuration:\n%w", err)
	}
	return c, nil
}

// CheckSecrets fails when a secret the cluster needs is missing, naming
// the command that fills it.
func (c *Config) CheckSecrets(stack string) error {
	var missing []string
	if c.Secrets.ErlangCookie == "" {
		missing = append(missing, Namespace+":"+KeyErlangCookie)
	}
	if c.Secrets.AdminPassword == "" {
		missing = append(missing, Namespace+":"+KeyAdminPassword)
	}
	if c.TLSEnabled && c.TLSSecretName == "" {
		for _, s := range []struct{ key, value string }{
			{KeyTLSCert, c.Secrets.TLSCert}, {KeyTLSKey, c.Secrets.TLSKey}, {KeyTLSCACert, c.Secrets.TLSCACert},
		} {
			if s.value == "" {
				missing = append(missing, Namespace+":"+s.key)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("stack %s lacks the secrets %s: run `warren init --stack %s` to generate them (or set them with `pulumi config set --secret`)",
		stack, strings.Join(missing, ", "), stack)
}

// LoadConfig reads, validates and checks the secrets of the running stack's
// configuration. Errors name the key, the value and the fix, and surface at
// preview time because the program returns them before creating anything.
func LoadConfig(ctx *pulumi.Context) (*Config, error) {
	c, err := ParseConfig(ContextLookup(ctx))
	if err != nil {
		return nil, err
	}
	if err := c.CheckSecrets(ctx.Stack()); err != nil {
		return nil, err
	}
	return c, nil
}

// Kubernetes' name rules (apimachinery's util/validation, whose package
// would pull in klog and more for three regular expressions).
var (
	dns1035Label     = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// confSafe reports whether s can stand as a rabbitmq.conf value as is.
func confSafe(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == '#' || r == 0x7f {
			return false
		}
	}
	return s != ""
}

// parser reads settings, falling back to defaults and collecting errors.
type parser struct {
	lookup Lookup
	errs   []error
}

func (p *parser) fail(key, value, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("  %s:%s = %q: %s", Namespace, key, value, fmt.Sprintf(format, args...)))
}

// failSecret never repeats the value.
func (p *parser) failSecret(key, msg string) {
	p.errs = append(p.errs, fmt.Errorf("  %s:%s (secret): %s", Namespace, key, msg))
}

func (p *parser) str(key string) string {
	v, ok, _ := p.lookup(key)
	if !ok {
		return defaults[key]
	}
	return strings.TrimSpace(v)
}

func (p *parser) boolean(key string) bool {
	v := p.str(key)
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(key, v, "want true or false")
	}
	return b
}

func (p *parser) integer(key string) int {
	v := p.str(key)
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(key, v, "want a whole number")
	}
	return n
}

func (p *parser) id(key string) int64 {
	n := p.integer(key)
	if n < 1 {
		p.fail(key, strconv.Itoa(n), "want a non-root id (1 or more)")
	}
	return int64(n)
}

func (p *parser) fraction(key string) float64 {
	v := p.str(key)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f >= 1 {
		p.fail(key, v, "want a fraction between 0 and 1, like 0.4")
		return 0
	}
	return f
}

func (p *parser) quantity(key string) resource.Quantity {
	v := p.str(key)
	q, err := resource.ParseQuantity(v)
	if err != nil {
		p.fail(key, v, "not a Kubernetes quantity (like 10Gi, 512Mi or 500m): %v", err)
		return resource.Quantity{}
	}
	if q.Sign() <= 0 {
		p.fail(key, v, "must be above zero")
	}
	return q
}

func (p *parser) oneOf(key string, allowed ...string) string {
	v := p.str(key)
	if !slices.Contains(allowed, v) {
		p.fail(key, v, "want one of %s", strings.Join(allowed, ", "))
	}
	return v
}

// list reads a list setting: a YAML list in the stack file (Pulumi passes it
// as JSON) or a comma-separated string.
func (p *parser) list(key string) []string {
	v := p.str(key)
	if v == "" {
		return nil
	}
	var out []string
	if strings.HasPrefix(v, "[") {
		if err := json.Unmarshal([]byte(v), &out); err != nil {
			p.fail(key, v, "want a list of strings: %v", err)
		}
		return out
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) secret(key string) string {
	v, ok, secret := p.lookup(key)
	if !ok || v == "" {
		return ""
	}
	if !secret {
		p.failSecret(key, "is stored in plain text; store it as a secret: `pulumi config set --secret "+key+" ...` or remove it and run `warren init`")
	}
	return v
}
