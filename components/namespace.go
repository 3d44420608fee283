package components

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// namespace creates the namespace when warren:createNamespace is true.
func (b *builder) namespace() (*corev1.Namespace, error) {
	ns, err := corev1.NewNamespace(b.ctx, b.resourceName("namespace"), &corev1.NamespaceArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:   pulumi.String(b.cfg.Namespace),
			Labels: pulumi.ToStringMap(b.names.Labels()),
		},
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("Namespace %s: %w", b.cfg.Namespace, err)
	}
	return ns, nil
}
