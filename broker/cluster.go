package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Cluster is a deployment's nodes and, where known, each node's own HTTP
// API: the way to make something happen on a given node (a dynamic shovel
// runs on the node whose API declared it).
type Cluster struct {
	Nodes []NodeInfo
	// APIs maps a node name to a client of that node's API.
	APIs map[string]*API
	// Unreached says, per running node without an API, why: not given, not
	// answering, or answering as another node.
	Unreached map[string]string
}

// API returns the API of node, or nil.
func (c *Cluster) API(node string) *API {
	if c == nil {
		return nil
	}
	return c.APIs[node]
}

// Running names the running nodes, sorted.
func (c *Cluster) Running() []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, n := range c.Nodes {
		if n.Running {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Discover lists the cluster's nodes and finds each node's own API: from
// the endpoint's NodeAPIs (each asked which node it is), else from its
// NodeAPITemplate. A running node whose API cannot be found or reached is
// listed in Unreached, not an error: callers fall back to the endpoint's
// API and say so.
//
// GET /api/nodes, then GET /api/overview on each node's API
func (a *API) Discover(ctx context.Context) (*Cluster, error) {
	nodes, err := a.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Nodes: nodes, APIs: map[string]*API{}, Unreached: map[string]string{}}
	var urls []string
	switch {
	case len(a.ep.NodeAPIs) > 0:
		urls = a.ep.NodeAPIs
	case a.ep.NodeAPITemplate != "":
		for _, n := range nodes {
			urls = append(urls, NodeAPIURL(a.ep.NodeAPITemplate, n.Name))
		}
	}
	type found struct {
		url, node string
		api       *API
		err       error
	}
	results := make([]found, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].url = u
			api, err := a.ep.NodeAPI(u)
			if err != nil {
				results[i].err = err
				return
			}
			api = api.WithPolicy(a.policy.NoRetry())
			ov, err := api.Overview(ctx)
			if err != nil {
				results[i].err = err
				return
			}
			results[i].node, results[i].api = ov.Node, api.WithPolicy(a.policy)
		}()
	}
	wg.Wait()
	var problems []string
	for _, r := range results {
		if r.err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", r.url, r.err))
			continue
		}
		if _, dup := c.APIs[r.node]; dup {
			continue
		}
		c.APIs[r.node] = r.api
	}
	for _, n := range nodes {
		if !n.Running || c.APIs[n.Name] != nil {
			continue
		}
		switch {
		case len(urls) == 0:
			c.Unreached[n.Name] = "no node API given (--node-api or --node-api-template)"
		case len(problems) > 0:
			c.Unreached[n.Name] = "no node API answered as this node (" + strings.Join(problems, "; ") + ")"
		default:
			c.Unreached[n.Name] = "no node API answered as this node"
		}
	}
	return c, nil
}

// NodeAPIURL fills a node API template: {host} is the node name's host
// part (after "@"), {node} the whole name.
func NodeAPIURL(template, node string) string {
	host := node
	if i := strings.IndexByte(node, '@'); i >= 0 {
		host = node[i+1:]
	}
	return strings.NewReplacer("{host}", host, "{node}", node).Replace(template)
}

// ClusterID returns the broker's internal cluster id, a random id every
// RabbitMQ cluster generates once and shares among its nodes.
//
// GET /api/global-parameters/internal_cluster_id
func (a *API) ClusterID(ctx context.Context) (string, error) {
	var p struct {
		Value string `json:"value"`
	}
	if err := a.do(ctx, request{method: http.MethodGet, path: "global-parameters/internal_cluster_id", out: &p, kind: kindQuick}); err != nil {
		return "", fmt.Errorf("read %s's cluster id: %w", a.ep.Name, err)
	}
	return p.Value, nil
}

// ErrSameBroker is returned when two endpoints that must differ (a
// migration's source and target) reach the same broker.
var ErrSameBroker = errors.New("the source and the target are the same broker")

// CheckDistinct returns ErrSameBroker, naming what they share, when a and b
// reach the same broker or cluster: the same internal cluster id, or a
// node in common. URLs say nothing: localhost and a Service name can be
// one broker, and two brokers can share a URL behind port forwards.
func CheckDistinct(ctx context.Context, a, b *API) error {
	ida, erra := a.ClusterID(ctx)
	idb, errb := b.ClusterID(ctx)
	if erra == nil && errb == nil && ida != "" && ida == idb {
		return fmt.Errorf("%w: both answer with cluster id %s (cluster %s). Point --%s-url/--%s-api at the old broker and --%s-url/--%s-api at the new cluster",
			ErrSameBroker, ida, clusterName(ctx, a), a.ep.Name, a.ep.Name, b.ep.Name, b.ep.Name)
	}
	na, err := a.ListNodes(ctx)
	if err != nil {
		return err
	}
	nb, err := b.ListNodes(ctx)
	if err != nil {
		return err
	}
	var common []string
	for _, x := range na {
		if slices.ContainsFunc(nb, func(y NodeInfo) bool { return y.Name == x.Name }) {
			common = append(common, x.Name)
		}
	}
	if len(common) > 0 && (erra != nil || errb != nil || ida == idb) {
		return fmt.Errorf("%w: both list node %s. Point --%s-url/--%s-api at the old broker and --%s-url/--%s-api at the new cluster",
			ErrSameBroker, strings.Join(common, ", "), a.ep.Name, a.ep.Name, b.ep.Name, b.ep.Name)
	}
	return nil
}

func clusterName(ctx context.Context, a *API) string {
	if ov, err := a.Overview(ctx); err == nil && ov.ClusterName != "" {
		return ov.ClusterName
	}
	return "unknown"
}
