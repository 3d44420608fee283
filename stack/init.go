package stack

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/warrenmq/warren/components"
)

// InitOptions vary what Init generates.
type InitOptions struct {
	// TLS turns TLS on for the stack (warren:tlsEnabled) and generates a CA
	// and server certificate when the stack has none.
	TLS bool
	// Now is the time certificates are issued at; zero means time.Now.
	Now time.Time
}

// InitResult names the secrets Init generated and the ones it kept; it
// never carries their values.
type InitResult struct {
	Stack        string   `json:"stack"`
	SettingsFile string   `json:"settingsFile"`
	Generated    []string `json:"generated"`
	Kept         []string `json:"kept"`
}

// Init creates the stack when missing and fills its missing secrets in
// Pulumi.<stack>.yaml, encrypted with the passphrase: the Erlang cookie and
// admin password (and, with warren:appUsername, the application user's
// password) from crypto/rand, and with TLS on and no existing Secret
// named, a CA and a server certificate whose SANs cover the client Service,
// the headless Service and every pod. Values already there are kept, so Init
// is safe to run again: a second run changes nothing unless the certificate
// no longer covers the cluster's names or is about to expire.
func Init(ctx context.Context, o Options, io InitOptions) (*InitResult, error) {
	o, st, _, err := open(ctx, o, components.Program, false)
	if err != nil {
		return nil, err
	}
	now := io.Now
	if now.IsZero() {
		now = time.Now()
	}
	all, err := st.GetAllConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stack %s settings: %w", o.Stack, err)
	}
	set := auto.ConfigMap{}
	key := func(k string) string { return components.Namespace + ":" + k }
	if io.TLS && all[key("tlsEnabled")].Value != "true" {
		set[key("tlsEnabled")] = auto.ConfigValue{Value: "true"}
	}

	// The settings as the program will see them, for the names to certify.
	values, secret := map[string]string{}, map[string]bool{}
	for k, v := range all {
		values[k], secret[k] = v.Value, v.Secret
	}
	for k, v := range set {
		values[k], secret[k] = v.Value, v.Secret
	}
	cfg, err := components.ParseConfig(components.MapLookup(values, secret))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, o.StackFile(), err)
	}

	res := &InitResult{Stack: o.Stack, SettingsFile: o.StackFile()}
	fill := func(k string, gen func() string) {
		if values[key(k)] != "" {
			res.Kept = append(res.Kept, key(k))
			return
		}
		v := gen()
		values[key(k)] = v
		set[key(k)] = auto.ConfigValue{Value: v, Secret: true}
		res.Generated = append(res.Generated, key(k))
	}
	// 52 base32 characters (260 bits) for the cookie, 26 (130 bits) for the
	// password: letters and digits only, safe in rabbitmq.conf and URLs.
	fill(components.KeyErlangCookie, func() string { return rand.Text() + rand.Text() })
	fill(components.KeyAdminPassword, rand.Text)
	if cfg.AppUsername != "" {
		fill(components.KeyAppPassword, rand.Text)
	}

	if cfg.TLSEnabled && cfg.TLSSecretName == "" {
		names := cfg.Names().DNSNames(cfg.Replicas, cfg.ClusterDomain)
		ca := CA{CertPEM: values[key(components.KeyTLSCACert)], KeyPEM: values[key(components.KeyTLSCAKey)]}
		server := ServerCert{CertPEM: values[key(components.KeyTLSCert)], KeyPEM: values[key(components.KeyTLSKey)]}
		newCA := !ca.Valid(now)
		if newCA {
			if ca, err = NewCA(cfg.Name, now); err != nil {
				return nil, err
			}
			set[key(components.KeyTLSCACert)] = auto.ConfigValue{Value: ca.CertPEM, Secret: true}
			set[key(components.KeyTLSCAKey)] = auto.ConfigValue{Value: ca.KeyPEM, Secret: true}
			res.Generated = append(res.Generated, key(components.KeyTLSCACert), key(components.KeyTLSCAKey))
		} else {
			res.Kept = append(res.Kept, key(components.KeyTLSCACert), key(components.KeyTLSCAKey))
		}
		if newCA || !server.Covers(ca, names, now) {
			if server, err = ca.Issue(names, now); err != nil {
				return nil, err
			}
			set[key(components.KeyTLSCert)] = auto.ConfigValue{Value: server.CertPEM, Secret: true}
			set[key(components.KeyTLSKey)] = auto.ConfigValue{Value: server.KeyPEM, Secret: true}
			res.Generated = append(res.Generated, key(components.KeyTLSCert), key(components.KeyTLSKey))
		} else {
			res.Kept = append(res.Kept, key(components.KeyTLSCert), key(components.KeyTLSKey))
		}
	}

	if len(set) > 0 {
		if err := st.SetAllConfig(ctx, set); err != nil {
			return nil, fmt.Errorf("write stack %s settings: %w", o.Stack, err)
		}
	}
	slices.Sort(res.Generated)
	slices.Sort(res.Kept)
	return res, nil
}
