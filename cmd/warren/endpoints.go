package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warrenmq/warren/broker"
)

// endpointFlags are the broker connection flags, the same on every command.
type endpointFlags struct {
	sourceURL, sourceAPI string
	targetURL, targetAPI string
	nodeAPIs             []string
	nodeAPITemplate      string
	tls                  broker.TLSOptions
}

type side int

const (
	sourceSide side = 1 << iota
	targetSide
	bothSides = sourceSide | targetSide
)

func addEndpointFlags(cmd *cobra.Command, sides side) *endpointFlags {
	f := &endpointFlags{}
	fs := cmd.Flags()
	if sides&sourceSide != 0 {
		fs.StringVar(&f.sourceURL, "source-url", "", "source AMQP URL, amqp[s]://user:pass@host:5672/")
		fs.StringVar(&f.sourceAPI, "source-api", "", "source HTTP API URL, http[s]://host:15672 (credentials default to the AMQP URL's)")
	}
	if sides&targetSide != 0 {
		fs.StringVar(&f.targetURL, "target-url", "", "target AMQP URLs, comma separated, one per node")
		fs.StringVar(&f.targetAPI, "target-api", "", "target HTTP API URL (credentials default to the first AMQP URL's)")
		fs.StringSliceVar(&f.nodeAPIs, "node-api", nil, "HTTP API URL of each target node, comma separated: shovels are declared on their queue's leader, calls fail over between nodes, and verify checks each login")
		fs.StringVar(&f.nodeAPITemplate, "node-api-template", "", "derive each target node's HTTP API URL from its name instead: {host} is the part after @, {node} the whole name (e.g. http://{host}:15672)")
	}
	fs.StringVar(&f.tls.CAFile, "ca-file", "", "PEM CA bundle for amqps:// and https:// endpoints")
	fs.StringVar(&f.tls.CertFile, "cert-file", "", "client certificate (PEM) for mutual TLS")
	fs.StringVar(&f.tls.KeyFile, "key-file", "", "client key (PEM) for mutual TLS")
	fs.StringVar(&f.tls.ServerName, "server-name", "", "TLS server name to expect, when it differs from the URL host")
	return f
}

func (f *endpointFlags) source() (broker.Endpoint, error) {
	ep, err := broker.ParseEndpoint("source", f.sourceURL, f.sourceAPI, f.tls)
	return ep, usage(err)
}

func (f *endpointFlags) target() (broker.Endpoint, error) {
	ep, err := broker.ParseEndpoint("target", f.targetURL, f.targetAPI, f.tls)
	if err != nil {
		return ep, usage(err)
	}
	for _, u := range f.nodeAPIs {
		api, err := broker.ParseAPIURL("target node", u)
		if err != nil {
			return ep, usage(fmt.Errorf("--node-api: %w", err))
		}
		ep.NodeAPIs = append(ep.NodeAPIs, api)
	}
	if t := f.nodeAPITemplate; t != "" {
		if !strings.Contains(t, "{host}") && !strings.Contains(t, "{node}") {
			return ep, usagef("--node-api-template %q: it must contain {host} or {node}", t)
		}
		if _, err := broker.ParseAPIURL("target node", broker.NodeAPIURL(t, "rabbit@example")); err != nil {
			return ep, usage(fmt.Errorf("--node-api-template: %w", err))
		}
		ep.NodeAPITemplate = t
	}
	return ep, nil
}
