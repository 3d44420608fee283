// Package lab runs warren's local broker lab: one single-node source broker
// (the stand-in for a team's `docker run rabbitmq:3-management`) and a
// 3-node target cluster, all from Debian's rabbitmq-server package, on
// 127.0.0.1 with their own ports and data directories.
//
// The lab exists so that every test talks to real brokers. It is driven by
// `warren lab up|down|status|env|seed` (and the Kubernetes lab by
// `warren lab k8s`, package lab/k8s).
package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Role tells a source node from a target cluster member.
type Role string

const (
	// Source is the single broker being migrated away from.
	Source Role = "source"
	// Target is a member of the cluster being migrated to.
	Target Role = "target"
)

// Node is one RabbitMQ node of the lab.
type Node struct {
	Role     Role
	ID       string // "source", "target-1", ...
	Erlang   string // Erlang node name, e.g. warren-target-1@localhost
	AMQPPort int
	APIPort  int
	DistPort int
	Dir      string // config, data, logs and pid file live here
}

// Credentials of the lab's admin users. They are lab-only values: the source
// keeps RabbitMQ's own default guest/guest (as the Docker image does), the
// target cluster gets a separate admin user, as a real deployment would.
const (
	SourceUser, SourcePassword = "guest", "guest"
	TargetUser, TargetPassword = "admin", "admin"
)

// Lab is the set of lab nodes and where they keep their state.
type Lab struct {
	Dir   string
	Nodes []Node
	// MemoryLimit and DiskLimit go into every node's rabbitmq.conf as
	// absolute watermarks, so that the lab behaves the same on any machine.
	MemoryLimit string
	DiskLimit   string
}

// Environment variables that move the lab. Defaults stay clear of a broker
// that already listens on 5672/15672 (and of the Kubernetes lab's source
// container, which uses those).
const (
	EnvDir            = "WARREN_LAB_DIR"              // default ~/.cache/warren/lab
	EnvSourceAMQPPort = "WARREN_LAB_SOURCE_AMQP_PORT" // default 5700
	EnvSourceAPIPort  = "WARREN_LAB_SOURCE_API_PORT"  // default 15700
	EnvTargetAMQPPort = "WARREN_LAB_TARGET_AMQP_PORT" // first target node, default 5701 (then 5702, 5703)
	EnvTargetAPIPort  = "WARREN_LAB_TARGET_API_PORT"  // first target node, default 15701
	EnvMemoryLimit    = "WARREN_LAB_MEMORY_LIMIT"     // default 1GB
	EnvDiskLimit      = "WARREN_LAB_DISK_LIMIT"       // default 200MB
)

// TargetNodes is the size of the lab's target cluster.
const TargetNodes = 3

// Default returns the lab as configured by the environment.
func Default() (*Lab, error) {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("find a cache directory for the lab (set %s): %w", EnvDir, err)
		}
		dir = filepath.Join(cache, "warren", "lab")
	}
	ports := map[string]int{}
	for env, def := range map[string]int{
		EnvSourceAMQPPort: 5700, EnvSourceAPIPort: 15700,
		EnvTargetAMQPPort: 5701, EnvTargetAPIPort: 15701,
	} {
		ports[env] = def
		if v := os.Getenv(env); v != "" {
			p, err := strconv.Atoi(v)
			if err != nil || p <= 0 || p > 65535-TargetNodes-20000 {
				return nil, fmt.Errorf("%s=%q: want a port number", env, v)
			}
			ports[env] = p
		}
	}
	l := &Lab{Dir: dir, MemoryLimit: envOr(EnvMemoryLimit, "1GB"), DiskLimit: envOr(EnvDiskLimit, "200MB")}
	l.Nodes = append(l.Nodes, l.node(Source, "source", ports[EnvSourceAMQPPort], ports[EnvSourceAPIPort]))
	for i := 0; i < TargetNodes; i++ {
		id := fmt.Sprintf("target-%d", i+1)
		l.Nodes = append(l.Nodes, l.node(Target, id, ports[EnvTargetAMQPPort]+i, ports[EnvTargetAPIPort]+i))
	}
	return l, nil
}

func (l *Lab) node(role Role, id string, amqpPort, apiPort int) Node {
	return Node{
		Role:     role,
		ID:       id,
		Erlang:   "warren-" + id + "@localhost",
		AMQPPort: amqpPort,
		APIPort:  apiPort,
		// RabbitMQ's own rule: distribution listens on AMQP port + 20000.
		DistPort: amqpPort + 20000,
		Dir:      filepath.Join(l.Dir, id),
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// NodesOf returns the lab's nodes of one role, in order.
func (l *Lab) NodesOf(role Role) []Node {
	var out []Node
	for _, n := range l.Nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// Node returns the node with the given ID ("source", "target-2").
func (l *Lab) Node(id string) (Node, bool) {
	for _, n := range l.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// Endpoints are the lab's connection settings, as WARREN_* variables that
// every warren command reads.
func (l *Lab) Endpoints() map[string]string {
	src := l.NodesOf(Source)[0]
	env := map[string]string{
		"WARREN_SOURCE_URL": fmt.Sprintf("amqp://%s:%s@127.0.0.1:%d/", SourceUser, SourcePassword, src.AMQPPort),
		"WARREN_SOURCE_API": fmt.Sprintf("http://127.0.0.1:%d", src.APIPort),
	}
	var urls, apis []string
	for _, n := range l.NodesOf(Target) {
		urls = append(urls, fmt.Sprintf("amqp://%s:%s@127.0.0.1:%d/", TargetUser, TargetPassword, n.AMQPPort))
		apis = append(apis, fmt.Sprintf("http://127.0.0.1:%d", n.APIPort))
	}
	env["WARREN_TARGET_URL"] = strings.Join(urls, ",")
	env["WARREN_TARGET_API"] = apis[0]
	// Every node's own API: shovels are declared on their queue's leader,
	// and calls fail over when a node goes away.
	env["WARREN_NODE_API"] = strings.Join(apis, ",")
	return env
}
