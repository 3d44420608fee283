package components

import (
	"fmt"
	"net/url"
	"strconv"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The app Secret follows the Service Binding specification for Kubernetes
// (servicebinding.io): a Secret of type servicebinding.io/<type> whose keys
// a binding runtime projects into the application's container.
const (
	appSecretType     = "servicebinding.io/rabbitmq"
	bindingType       = "rabbitmq"
	bindingProvider   = "rabbitmq"
	appCredentialAnno = "warren.dev/credentials"
)

// appConnection is what an application needs to connect: TLS (amqps on
// 5671) whenever it is on, since the Secret carries the CA to verify the
// server with; the application user, or the admin when there is none.
type appConnection struct {
	Host, Username, Password, Vhost string
	Port                            int
	TLS                             bool
}

func newAppConnection(cfg *Config, n Names) appConnection {
	c := appConnection{Host: n.ClientHost(), Port: PortAMQP, TLS: cfg.TLSEnabled}
	if c.TLS {
		c.Port = PortAMQPS
	}
	if cfg.AppUsername != "" {
		c.Username, c.Password, c.Vhost = cfg.AppUsername, cfg.Secrets.AppPassword, cfg.AppVhost
	} else {
		c.Username, c.Password, c.Vhost = cfg.AdminUsername, cfg.Secrets.AdminPassword, defaultVhost
	}
	return c
}

// URI is the AMQP URI with credentials; the vhost is percent-encoded as the
// URI spec wants ("/" is %2F).
func (c appConnection) URI() string {
	scheme := "amqp"
	if c.TLS {
		scheme = "amqps"
	}
	u := url.URL{
		Scheme:  scheme,
		User:    url.UserPassword(c.Username, c.Password),
		Host:    c.Host + ":" + strconv.Itoa(c.Port),
		Path:    "/" + c.Vhost,
		RawPath: "/" + url.PathEscape(c.Vhost),
	}
	return u.String()
}

// appSecret is the Secret applications bind to: type, provider, host, port,
// username, password, vhost, uri, and ca.crt with TLS (when the CA comes
// from the stack's settings; with warren:tlsSecretName, mount that Secret's
// ca.crt instead). Without warren:appUsername it carries the admin
// credentials, and its warren.dev/credentials annotation says "admin".
func (b *builder) appSecret() (*corev1.Secret, error) {
	c := newAppConnection(b.cfg, b.names)
	data := pulumi.StringMap{
		"type":     pulumi.String(bindingType),
		"provider": pulumi.String(bindingProvider),
		"host":     pulumi.String(c.Host),
		"port":     pulumi.String(strconv.Itoa(c.Port)),
		"username": pulumi.String(c.Username),
		"password": secretString(c.Password),
		"vhost":    pulumi.String(c.Vhost),
		"uri":      secretString(c.URI()),
	}
	if c.TLS && b.cfg.TLSSecretName == "" {
		data[tlsCAKey] = pulumi.String(b.cfg.Secrets.TLSCACert)
	}
	who := "application"
	if b.cfg.AppUsername == "" {
		who = "admin"
	}
	meta := b.meta(b.names.AppSecret())
	meta.Annotations = pulumi.StringMap{appCredentialAnno: pulumi.String(who)}
	sec, err := corev1.NewSecret(b.ctx, b.resourceName("app"), &corev1.SecretArgs{
		Metadata:   meta,
		Type:       pulumi.String(appSecretType),
		StringData: data,
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("Secret %s: %w", b.names.AppSecret(), err)
	}
	return sec, nil
}
