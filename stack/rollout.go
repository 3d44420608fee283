package stack

import (
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// Resource types whose steps `warren up` reads from the engine's events.
const (
	typeStatefulSet = "kubernetes:apps/v1:StatefulSet"
	typeService     = "kubernetes:core/v1:Service"
)

// rollout is what an update did to the cluster's pods, read from the
// engine's events while `pulumi up` runs: whether the StatefulSet was
// created, rolled or left alone, and the client Service's ClusterIP.
type rollout struct {
	// StatefulSetOp is the engine's step for the StatefulSet: create,
	// update, replace, same, ... ("" when the events did not show it).
	StatefulSetOp string
	// PodsChanged is true when the update changed the StatefulSet's spec
	// (pod template, replicas) or replaced it: the pods were restarted,
	// added or removed. Pulumi's Kubernetes provider returns only once the
	// rollout is complete and every pod is ready.
	PodsChanged bool
	// ClusterIP is the client Service's ClusterIP, when its outputs
	// showed one.
	ClusterIP string
}

// rolloutRecorder collects a rollout from the engine's events.
type rolloutRecorder struct {
	clientService string // the client Service's metadata.name
	r             rollout
}

// add reads one event.
func (rr *rolloutRecorder) add(e apitype.EngineEvent) {
	var m *apitype.StepEventMetadata
	switch {
	case e.ResourcePreEvent != nil:
		m = &e.ResourcePreEvent.Metadata
	case e.ResOutputsEvent != nil:
		m = &e.ResOutputsEvent.Metadata
	default:
		return
	}
	switch m.Type {
	case typeStatefulSet:
		op := string(m.Op)
		rr.r.StatefulSetOp = op
		switch m.Op {
		case apitype.OpReplace, apitype.OpCreateReplacement, apitype.OpDeleteReplaced:
			rr.r.PodsChanged = true
		case apitype.OpUpdate:
			rr.r.PodsChanged = rr.r.PodsChanged || specChanged(m)
		}
	case typeService:
		if m.New == nil || m.New.Outputs == nil {
			return
		}
		if name, _ := dig(m.New.Outputs, "metadata", "name").(string); name != rr.clientService {
			return
		}
		if ip, _ := dig(m.New.Outputs, "spec", "clusterIP").(string); ip != "" && ip != "None" {
			rr.r.ClusterIP = ip
		}
	}
}

// specChanged reports whether an update step touches the resource's spec.
func specChanged(m *apitype.StepEventMetadata) bool {
	if slices.Contains(m.Diffs, "spec") {
		return true
	}
	for k := range m.DetailedDiff {
		if k == "spec" || strings.HasPrefix(k, "spec.") || strings.HasPrefix(k, "spec[") {
			return true
		}
	}
	return false
}

// dig walks nested JSON objects.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// recordRollout reads events until the channel closes (Pulumi closes it
// when the operation ends) and then sends the rollout.
func recordRollout(ch <-chan events.EngineEvent, clientService string) <-chan rollout {
	out := make(chan rollout, 1)
	go func() {
		rr := &rolloutRecorder{clientService: clientService}
		for e := range ch {
			if e.Error == nil {
				rr.add(e.EngineEvent)
			}
		}
		out <- rr.r
	}()
	return out
}
