package appclient

import (
	"fmt"
	"os"
)

// Environment variables read by FromEnv.
const (
	URLsEnv    = "AMQP_URLS"    // comma-separated amqp[s]:// URLs
	BindingEnv = "AMQP_BINDING" // name of the service binding under $SERVICE_BINDING_ROOT
)

// FromEnv builds a Config from the environment: the URLs in AMQP_URLS when
// it is set, otherwise the service binding under $SERVICE_BINDING_ROOT
// (the one named by AMQP_BINDING, or the only one of type rabbitmq).
// Switching a service from the old broker to the cluster is then a matter
// of changing AMQP_URLS, or the mounted Secret, and restarting it.
func FromEnv() (Config, error) {
	if v := os.Getenv(URLsEnv); v != "" {
		urls := ParseURLs(v)
		if len(urls) == 0 {
			return Config{}, fmt.Errorf("appclient: %s holds no URL", URLsEnv)
		}
		return Config{URLs: urls}, nil
	}
	if os.Getenv(BindingRootEnv) == "" {
		return Config{}, fmt.Errorf("appclient: set %s (amqp://user:pass@host:5672/vhost, comma-separated for several nodes) or mount a service binding and set %s",
			URLsEnv, BindingRootEnv)
	}
	return LookupBinding(os.Getenv(BindingEnv))
}
