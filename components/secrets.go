package components

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Keys inside the Secrets.
const (
	cookieKey          = ".erlang.cookie"
	adminUsernameKey   = "username"
	adminPasswordKey   = "password"
	adminConfKey       = "default_user.conf"
	tlsCertKey         = "tls.crt"
	tlsKeyKey          = "tls.key"
	tlsCAKey           = "ca.crt"
	secretTypeOpaque   = "Opaque"
	secretTypeTLS      = "kubernetes.io/tls"
	cookieMountDir     = "/tmp/erlang-cookie-secret"
	rabbitmqHome       = "/var/lib/rabbitmq"
	rabbitmqMnesiaBase = "/var/lib/rabbitmq/mnesia"
)

// secretString marks a value as a Pulumi secret, so it is encrypted in the
// state and masked in previews.
func secretString(v string) pulumi.StringInput {
	return pulumi.ToSecret(pulumi.String(v)).(pulumi.StringOutput)
}

// defaultUserConf creates the admin user on a fresh cluster's first boot. It
// lives in the Secret (not the ConfigMap) and is projected into conf.d.
func defaultUserConf(cfg *Config) string {
	return fmt.Sprintf("default_user = %s\ndefault_pass = %s\n", cfg.AdminUsername, cfg.Secrets.AdminPassword)
}

// secrets builds the Erlang cookie and admin user Secrets from the stack's
// config secrets (filled by `warren init`), never from plain config.
func (b *builder) secrets() (cookie, admin *corev1.Secret, err error) {
	cookie, err = corev1.NewSecret(b.ctx, b.resourceName("erlang-cookie"), &corev1.SecretArgs{
		Metadata:   b.meta(b.names.ErlangCookieSecret()),
		Type:       pulumi.String(secretTypeOpaque),
		StringData: pulumi.StringMap{cookieKey: secretString(b.cfg.Secrets.ErlangCookie)},
	}, b.with()...)
	if err != nil {
		return nil, nil, fmt.Errorf("Secret %s: %w", b.names.ErlangCookieSecret(), err)
	}
	admin, err = corev1.NewSecret(b.ctx, b.resourceName("default-user"), &corev1.SecretArgs{
		Metadata: b.meta(b.names.AdminSecret()),
		Type:     pulumi.String(secretTypeOpaque),
		StringData: pulumi.StringMap{
			adminUsernameKey: pulumi.String(b.cfg.AdminUsername),
			adminPasswordKey: secretString(b.cfg.Secrets.AdminPassword),
			adminConfKey:     secretString(defaultUserConf(b.cfg)),
		},
	}, b.with()...)
	if err != nil {
		return nil, nil, fmt.Errorf("Secret %s: %w", b.names.AdminSecret(), err)
	}
	return cookie, admin, nil
}
