package components

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	apiextensionsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ServiceMonitorCRD is the CustomResourceDefinition the Prometheus Operator
// installs; without it the API server refuses ServiceMonitors.
const ServiceMonitorCRD = "servicemonitors.monitoring.coreos.com"

// metricsPath is where rabbitmq_prometheus serves its aggregated metrics.
const metricsPath = "/metrics"

// metricsPort returns the Prometheus listener that is on, its Service port
// name and scheme: plain unless plain listeners are off.
func metricsPort(cfg *Config) (port int, name, scheme string) {
	if cfg.DisablePlainListeners {
		return PortPrometheusTLS, "prometheus-tls", "https"
	}
	return PortPrometheus, "prometheus", "http"
}

// prometheusAnnotations let a Prometheus configured for the common
// prometheus.io/* pod annotations scrape every pod without a ServiceMonitor.
func prometheusAnnotations(cfg *Config) map[string]string {
	port, _, scheme := metricsPort(cfg)
	return map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   fmt.Sprint(port),
		"prometheus.io/path":   metricsPath,
		"prometheus.io/scheme": scheme,
	}
}

// CheckServiceMonitorCRD reads the ServiceMonitor CRD from the cluster, so
// that a cluster without the Prometheus Operator fails preview and up with
// the CRD's name before anything is created: pass the result to
// NewRabbitCluster in pulumi.DependsOn. Rendering has no cluster to ask.
func CheckServiceMonitorCRD(ctx *pulumi.Context, opts ...pulumi.ResourceOption) (pulumi.Resource, error) {
	crd, err := apiextensionsv1.GetCustomResourceDefinition(ctx, "servicemonitor-crd", pulumi.ID(ServiceMonitorCRD), nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("look up CustomResourceDefinition %s: %w", ServiceMonitorCRD, err)
	}
	return crd, nil
}

// serviceMonitor asks a Prometheus Operator to scrape every pod through the
// client Service's endpoints (the headless Service has no metrics port, so
// it contributes no targets). With TLS only, it scrapes HTTPS and checks the
// server certificate against the CA in the TLS Secret.
func (b *builder) serviceMonitor() (*apiextensions.CustomResource, error) {
	if !b.cfg.ServiceMonitor {
		return nil, nil
	}
	cfg, n := b.cfg, b.names
	_, portName, scheme := metricsPort(cfg)
	endpoint := map[string]any{
		"port":   portName,
		"path":   metricsPath,
		"scheme": scheme,
	}
	if scheme == "https" {
		endpoint["tlsConfig"] = map[string]any{
			"ca":         map[string]any{"secret": map[string]any{"name": tlsSecretName(cfg, n), "key": tlsCAKey}},
			"serverName": n.ClientHost(),
		}
	}
	meta := b.meta(n.ServiceMonitor())
	labels := n.Labels()
	for k, v := range cfg.ServiceMonitorLabels {
		labels[k] = v
	}
	meta.Labels = pulumi.ToStringMap(labels)
	sm, err := apiextensions.NewCustomResource(b.ctx, b.resourceName("service-monitor"), &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("monitoring.coreos.com/v1"),
		Kind:       pulumi.String("ServiceMonitor"),
		Metadata:   meta,
		OtherFields: kubernetes.UntypedArgs{
			"spec": map[string]any{
				"selector":          map[string]any{"matchLabels": n.SelectorLabels()},
				"namespaceSelector": map[string]any{"matchNames": []string{cfg.Namespace}},
				"endpoints":         []any{endpoint},
			},
		},
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("ServiceMonitor %s: %w", n.ServiceMonitor(), err)
	}
	return sm, nil
}
