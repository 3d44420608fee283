package components

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// tlsSecretName is the Secret the pods mount for TLS: an existing one named
// in config, or the one built from config secrets; empty without TLS.
func tlsSecretName(cfg *Config, n Names) string {
	switch {
	case !cfg.TLSEnabled:
		return ""
	case cfg.TLSSecretName != "":
		return cfg.TLSSecretName
	default:
		return n.TLSSecret()
	}
}

// tlsSecret builds the kubernetes.io/tls Secret (with ca.crt, which RabbitMQ
// needs to verify client certificates) from the tls* config secrets that
// `warren init` can generate. It returns nil when TLS is off or an existing
// Secret is used.
func (b *builder) tlsSecret() (*corev1.Secret, error) {
	if !b.cfg.TLSEnabled || b.cfg.TLSSecretName != "" {
		return nil, nil
	}
	s := b.cfg.Secrets
	sec, err := corev1.NewSecret(b.ctx, b.resourceName("tls"), &corev1.SecretArgs{
		Metadata: b.meta(b.names.TLSSecret()),
		Type:     pulumi.String(secretTypeTLS),
		StringData: pulumi.StringMap{
			tlsCertKey: pulumi.String(s.TLSCert),
			tlsKeyKey:  secretString(s.TLSKey),
			tlsCAKey:   pulumi.String(s.TLSCACert),
		},
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("Secret %s: %w", b.names.TLSSecret(), err)
	}
	return sec, nil
}
