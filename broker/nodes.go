package broker

import (
	"context"
	"fmt"
	"net/http"
)

// NodeInfo is the part of a node in GET /api/nodes that warren reads.
type NodeInfo struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
	// Figures stay zero until the node has reported them (a few seconds
	// after it starts); see HasFigures.
	MemUsed       int64         `json:"mem_used"`
	MemLimit      int64         `json:"mem_limit"`
	MemAlarm      bool          `json:"mem_alarm"`
	DiskFree      int64         `json:"disk_free"`
	DiskFreeLimit int64         `json:"disk_free_limit"`
	DiskAlarm     bool          `json:"disk_free_alarm"`
	Partitions    []string      `json:"partitions"`
	Applications  []Application `json:"applications"`
	Uptime        int64         `json:"uptime"`
}

// Application is an Erlang application a node runs (a plugin, say).
type Application struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// HasFigures reports whether a running node has reported its disk and
// memory figures: disk_free_limit is never 0 once reported.
func (n NodeInfo) HasFigures() bool { return n.DiskFreeLimit != 0 }

// Alarms names the node's resource alarms ("memory", "disk").
func (n NodeInfo) Alarms() []string {
	var out []string
	if n.MemAlarm {
		out = append(out, "memory")
	}
	if n.DiskAlarm {
		out = append(out, "disk")
	}
	return out
}

// RestartManagement is the rabbitmqctl eval expression that restarts a
// node's management plugin and agent, and with them its statistics: the way
// out when a node's stats agent crashed for good, which RabbitMQ 3.10 does
// when the node boots while a peer reconnects (rabbit_net:dist_info finds
// two distribution ports, rabbitmq-server#5496): the HTTP API then lists
// the node without disk or memory figures. Restarting only the agent's
// supervisor brings the figures back but leaves the node's HTTP API unable
// to list other nodes' connections.
//
//	rabbitmqctl -n <node> eval '<RestartManagement>'
const RestartManagement = "application:stop(rabbitmq_management), application:stop(rabbitmq_management_agent), " +
	"application:start(rabbitmq_management_agent), application:start(rabbitmq_management)."

// ListNodes returns the cluster's nodes as the answering node sees them.
//
// GET /api/nodes
func (a *API) ListNodes(ctx context.Context) ([]NodeInfo, error) {
	var out []NodeInfo
	if err := a.do(ctx, request{method: http.MethodGet, path: "nodes", out: &out, kind: kindList}); err != nil {
		return nil, fmt.Errorf("list %s nodes: %w", a.ep.Name, err)
	}
	return out, nil
}

// GetNode returns one node.
//
// GET /api/nodes/{name}
func (a *API) GetNode(ctx context.Context, name string) (*NodeInfo, error) {
	var n NodeInfo
	if err := a.Get(ctx, path("nodes", name), &n); err != nil {
		return nil, err
	}
	return &n, nil
}
