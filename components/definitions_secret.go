package components

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Where the pods see the definitions file, and its key in the Secret.
const (
	definitionsDir      = "/etc/warren/definitions"
	definitionsKey      = "definitions.json"
	definitionsHashAnno = "warren.dev/definitions-hash"
	defaultVhost        = "/"
	// defaultVhostDescription is what RabbitMQ gives "/" when it seeds it.
	defaultVhostDescription = "Default virtual host"
)

// The definitions file, in the JSON the management API exports, limited to
// what is declared here.
type (
	definitionsFile struct {
		Users       []defUser       `json:"users"`
		Vhosts      []defVhost      `json:"vhosts"`
		Permissions []defPermission `json:"permissions"`
	}
	defUser struct {
		Name     string   `json:"name"`
		Password string   `json:"password"`
		Tags     []string `json:"tags"`
	}
	defVhost struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	defPermission struct {
		User      string `json:"user"`
		Vhost     string `json:"vhost"`
		Configure string `json:"configure"`
		Write     string `json:"write"`
		Read      string `json:"read"`
	}
)

// hasDefinitions reports whether the nodes import a definitions file at
// boot: only with an application user, so a cluster without one keeps
// RabbitMQ's first-boot seeding of the admin user (default_user.conf).
func hasDefinitions(cfg *Config) bool { return cfg.AppUsername != "" }

// definitionsJSON is the file every node imports at every boot
// (load_definitions), before it opens its listeners. RabbitMQ skips seeding
// the default user and vhost when definitions are configured, so the file
// declares them too: the admin user, "/" and the admin's permissions on it,
// as seeding would, plus the application user, its vhost and permissions.
//
// Importing is idempotent for these kinds (RabbitMQ 3.10's put_user,
// put_vhost and set_permissions create or overwrite), so every restart
// brings users, passwords, tags, permissions and the two vhosts'
// descriptions back to the stack's settings; changes made by hand to those
// are undone on the next restart. definitions.skip_if_unchanged is not used:
// on 3.10 it needs definitions.import_backend (set with load_definitions
// alone it stops the node at boot), and it records a file as imported even
// when the import failed.
func definitionsJSON(cfg *Config) (string, error) {
	all := ".*"
	f := definitionsFile{
		Users: []defUser{
			{Name: cfg.AdminUsername, Password: cfg.Secrets.AdminPassword, Tags: []string{"administrator"}},
			{Name: cfg.AppUsername, Password: cfg.Secrets.AppPassword, Tags: []string{}},
		},
		Vhosts: []defVhost{{Name: defaultVhost, Description: defaultVhostDescription}},
		Permissions: []defPermission{
			{User: cfg.AdminUsername, Vhost: defaultVhost, Configure: all, Write: all, Read: all},
		},
	}
	if cfg.AppVhost != defaultVhost {
		f.Vhosts = append(f.Vhosts, defVhost{Name: cfg.AppVhost})
		f.Permissions = append(f.Permissions, defPermission{User: cfg.AdminUsername, Vhost: cfg.AppVhost, Configure: all, Write: all, Read: all})
	}
	p := cfg.AppPermissions
	f.Permissions = append(f.Permissions, defPermission{User: cfg.AppUsername, Vhost: cfg.AppVhost, Configure: p.Configure, Write: p.Write, Read: p.Read})
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", fmt.Errorf("definitions file: %w", err)
	}
	return string(b) + "\n", nil
}

// definitionsHash changes whenever the definitions file does, so that, as a
// pod template annotation, a change restarts the nodes (which import it only
// at boot). It is keyed with the Erlang cookie: the file holds passwords,
// and an annotation is readable by anyone who can read the StatefulSet.
func definitionsHash(cfg *Config) (string, error) {
	j, err := definitionsJSON(cfg)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, []byte(cfg.Secrets.ErlangCookie))
	m.Write([]byte(j))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// definitionsSecret holds the definitions file (it has passwords, so it is
// a Secret); nil without an application user.
func (b *builder) definitionsSecret() (*corev1.Secret, error) {
	if !hasDefinitions(b.cfg) {
		return nil, nil
	}
	j, err := definitionsJSON(b.cfg)
	if err != nil {
		return nil, err
	}
	sec, err := corev1.NewSecret(b.ctx, b.resourceName("definitions"), &corev1.SecretArgs{
		Metadata:   b.meta(b.names.DefinitionsSecret()),
		Type:       pulumi.String(secretTypeOpaque),
		StringData: pulumi.StringMap{definitionsKey: secretString(j)},
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("Secret %s: %w", b.names.DefinitionsSecret(), err)
	}
	return sec, nil
}
