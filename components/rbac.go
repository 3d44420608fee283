package components

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// rbac gives the pods the least the k8s peer discovery backend needs: read
// the headless Service's endpoints, and create events (the backend reports
// cluster formation problems as events).
func (b *builder) rbac() ([]pulumi.Resource, error) {
	sa, err := corev1.NewServiceAccount(b.ctx, b.resourceName("service-account"), &corev1.ServiceAccountArgs{
		Metadata: b.meta(b.names.ServiceAccount()),
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("ServiceAccount %s: %w", b.names.ServiceAccount(), err)
	}
	role, err := rbacv1.NewRole(b.ctx, b.resourceName("peer-discovery"), &rbacv1.RoleArgs{
		Metadata: b.meta(b.names.Role()),
		Rules: rbacv1.PolicyRuleArray{
			rbacv1.PolicyRuleArgs{
				ApiGroups: pulumi.StringArray{pulumi.String("")},
				Resources: pulumi.StringArray{pulumi.String("endpoints")},
				Verbs:     pulumi.StringArray{pulumi.String("get")},
			},
			rbacv1.PolicyRuleArgs{
				ApiGroups: pulumi.StringArray{pulumi.String("")},
				Resources: pulumi.StringArray{pulumi.String("events")},
				Verbs:     pulumi.StringArray{pulumi.String("create")},
			},
		},
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("Role %s: %w", b.names.Role(), err)
	}
	binding, err := rbacv1.NewRoleBinding(b.ctx, b.resourceName("role-binding"), &rbacv1.RoleBindingArgs{
		Metadata: b.meta(b.names.RoleBinding()),
		RoleRef: rbacv1.RoleRefArgs{
			ApiGroup: pulumi.String("rbac.authorization.k8s.io"),
			Kind:     pulumi.String("Role"),
			Name:     role.Metadata.Name().Elem(),
		},
		Subjects: rbacv1.SubjectArray{
			rbacv1.SubjectArgs{
				Kind:      pulumi.String("ServiceAccount"),
				Name:      sa.Metadata.Name().Elem(),
				Namespace: pulumi.String(b.cfg.Namespace),
			},
		},
	}, b.with()...)
	if err != nil {
		return nil, fmt.Errorf("RoleBinding %s: %w", b.names.RoleBinding(), err)
	}
	return []pulumi.Resource{sa, role, binding}, nil
}
