package appclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// BindingRootEnv names the directory that holds service bindings, one
// directory per binding (servicebinding.io: $SERVICE_BINDING_ROOT/<name>/<key>).
const BindingRootEnv = "SERVICE_BINDING_ROOT"

// BindingType is the value of a binding's `type` file that FromBinding accepts.
const BindingType = "rabbitmq"

// Files of a RabbitMQ service binding, as a connection Secret mounted as a
// volume lays them out (one file per key).
const (
	bindingType     = "type"     // required: rabbitmq
	bindingProvider = "provider" // optional, informational
	bindingURI      = "uri"      // amqp[s]:// URL; several separated by commas
	bindingHost     = "host"     // used when there is no uri; several separated by commas
	bindingPort     = "port"
	bindingUsername = "username"
	bindingPassword = "password"
	bindingVhost    = "vhost"
	bindingCA       = "ca.crt"  // TLS: trusted CA; turns amqps on
	bindingCert     = "tls.crt" // TLS: client certificate (optional)
	bindingKey      = "tls.key" // TLS: its key
)

// FromBinding builds a Config from a service binding directory: a
// connection Secret mounted as files. It reads `type` (must be rabbitmq),
// then either `uri` (one or more comma-separated URLs; `username` and
// `password`, when present, fill in credentials the URL lacks) or `host`,
// `port`, `username`, `password` and `vhost`. With `ca.crt` present the
// connection uses TLS (amqps, port 5671 by default) trusting that CA, and
// presents `tls.crt`/`tls.key` when both are there.
//
// Errors name the directory and file, never a file's content.
func FromBinding(dir string) (Config, error) {
	read := func(key string) (string, bool, error) {
		b, err := os.ReadFile(filepath.Join(dir, key))
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("appclient: read service binding %s: %w", filepath.Join(dir, key), err)
		}
		return strings.TrimSpace(string(b)), true, nil
	}
	typ, ok, err := read(bindingType)
	if err != nil {
		return Config{}, err
	}
	if !ok {
		return Config{}, fmt.Errorf("appclient: %s is not a service binding: it has no %q file (is the connection Secret mounted there?)", dir, bindingType)
	}
	if !strings.EqualFold(typ, BindingType) {
		return Config{}, fmt.Errorf("appclient: service binding %s has type %q, want %q", dir, typ, BindingType)
	}
	user, hasUser, err := read(bindingUsername)
	if err != nil {
		return Config{}, err
	}
	pass, hasPass, err := read(bindingPassword)
	if err != nil {
		return Config{}, err
	}
	caFile := filepath.Join(dir, bindingCA)
	_, caErr := os.Stat(caFile)
	useTLS := caErr == nil

	var cfg Config
	if raw, ok, err := read(bindingURI); err != nil {
		return Config{}, err
	} else if ok {
		for i, one := range ParseURLs(raw) {
			u, err := amqp.ParseURI(one)
			if err != nil {
				return Config{}, fmt.Errorf("appclient: service binding %s: URL %d in %q (%s) cannot be parsed: want amqp[s]://user:password@host:port/vhost",
					dir, i+1, bindingURI, redactRaw(one))
			}
			// amqp.ParseURI fills in guest/guest when the URL has no user.
			if !strings.Contains(one, "@") {
				if hasUser {
					u.Username = user
				}
				if hasPass {
					u.Password = pass
				}
			}
			cfg.URLs = append(cfg.URLs, u.String())
		}
		if len(cfg.URLs) == 0 {
			return Config{}, fmt.Errorf("appclient: service binding %s: %q is empty", dir, bindingURI)
		}
	} else {
		hosts, ok, err := read(bindingHost)
		if err != nil {
			return Config{}, err
		}
		if !ok || hosts == "" {
			return Config{}, fmt.Errorf("appclient: service binding %s has neither %q nor %q", dir, bindingURI, bindingHost)
		}
		if !hasUser || !hasPass {
			return Config{}, fmt.Errorf("appclient: service binding %s has %q but no %q and %q", dir, bindingHost, bindingUsername, bindingPassword)
		}
		u := amqp.URI{Scheme: "amqp", Port: 5672, Username: user, Password: pass, Vhost: "/"}
		if useTLS {
			u.Scheme, u.Port = "amqps", 5671
		}
		if p, ok, err := read(bindingPort); err != nil {
			return Config{}, err
		} else if ok {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return Config{}, fmt.Errorf("appclient: service binding %s: %q holds %q, want a port number", dir, bindingPort, p)
			}
			u.Port = n
		}
		if v, ok, err := read(bindingVhost); err != nil {
			return Config{}, err
		} else if ok && v != "" {
			u.Vhost = v
		}
		for _, h := range strings.Split(hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				u.Host = h
				cfg.URLs = append(cfg.URLs, u.String())
			}
		}
	}
	if useTLS {
		tc, err := bindingTLS(dir)
		if err != nil {
			return Config{}, err
		}
		cfg.TLS = tc
	}
	return cfg, nil
}

func bindingTLS(dir string) (*tls.Config, error) {
	pem, err := os.ReadFile(filepath.Join(dir, bindingCA))
	if err != nil {
		return nil, fmt.Errorf("appclient: read service binding CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("appclient: service binding %s: %s holds no PEM certificate", dir, bindingCA)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	certFile, keyFile := filepath.Join(dir, bindingCert), filepath.Join(dir, bindingKey)
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	switch {
	case certErr == nil && keyErr == nil:
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("appclient: service binding %s: load client certificate %s/%s: %w", dir, bindingCert, bindingKey, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	case (certErr == nil) != (keyErr == nil):
		return nil, fmt.Errorf("appclient: service binding %s: a client certificate needs both %s and %s", dir, bindingCert, bindingKey)
	}
	return tc, nil
}

// LookupBinding finds a RabbitMQ service binding under $SERVICE_BINDING_ROOT
// and reads it with FromBinding. With a name it reads that binding; with ""
// it takes the only binding whose type is rabbitmq and fails when there is
// none or more than one.
func LookupBinding(name string) (Config, error) {
	root := os.Getenv(BindingRootEnv)
	if root == "" {
		return Config{}, fmt.Errorf("appclient: %s is not set: mount the connection Secret under a directory and point %s at it", BindingRootEnv, BindingRootEnv)
	}
	if name != "" {
		return FromBinding(filepath.Join(root, name))
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return Config{}, fmt.Errorf("appclient: list service bindings: %w", err)
	}
	var found []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // Kubernetes' ..data and timestamped directories
		}
		typ, err := os.ReadFile(filepath.Join(root, e.Name(), bindingType))
		if err == nil && strings.EqualFold(strings.TrimSpace(string(typ)), BindingType) {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 0:
		return Config{}, fmt.Errorf("appclient: no service binding of type %s under %s", BindingType, root)
	case 1:
		return FromBinding(filepath.Join(root, found[0]))
	default:
		return Config{}, fmt.Errorf("appclient: %d service bindings of type %s under %s (%s): name the one to use",
			len(found), BindingType, root, strings.Join(found, ", "))
	}
}
