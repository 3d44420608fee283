package components

import (
	"fmt"

	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// podDisruptionBudget lets node drains evict one RabbitMQ pod at a time, so
// quorum queues (majority of 3) keep a quorum through voluntary disruptions.
func (b *builder) podDisruptionBudget() (*policyv1.PodDisruptionBudget, error) {
	pdb, err := policyv1.NewPodDisruptionBudget(b.ctx, b.resourceName("pdb"), &policyv1.PodDisruptionBudgetArgs{
		Metadata: b.meta(b.names.PodDisruptionBudget()),
		Spec: &policyv1.PodDisruptionBudgetSpecArgs{
			MaxUnavailable: pulumi.Int(1),
			Selector: &metav1.LabelSelectorArgs{
				MatchLabels: pulumi.ToStringMap(b.names.SelectorLabels()),
			},
		},
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("PodDisruptionBudget %s: %w", b.names.PodDisruptionBudget(), err)
	}
	return pdb, nil
}
