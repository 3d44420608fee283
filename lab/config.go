package lab

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Plugins enabled on every lab node. Federation is on so that definitions
// carrying federation upstreams can be exported and imported like a real
// team's broker's.
var Plugins = []string{
	"rabbitmq_management",
	"rabbitmq_shovel",
	"rabbitmq_shovel_management",
	"rabbitmq_federation",
	"rabbitmq_federation_management",
}

func (l *Lab) cookiePath() string { return filepath.Join(l.Dir, ".erlang.cookie") }

// writeCookie creates the shared Erlang cookie once. Erlang refuses a cookie
// file that others can read, hence 0400.
func (l *Lab) writeCookie() error {
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return fmt.Errorf("create lab dir: %w", err)
	}
	_, err := os.Stat(l.cookiePath())
	if err == nil {
		return os.Chmod(l.cookiePath(), 0o400)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return err
	}
	for i := range buf {
		buf[i] = letters[int(buf[i])%len(letters)]
	}
	return os.WriteFile(l.cookiePath(), buf, 0o400)
}

// Config renders a node's rabbitmq.conf.
func (l *Lab) Config(n Node) string {
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%s = %v\n", k, v) }
	line("listeners.tcp.1", "127.0.0.1:"+strconv.Itoa(n.AMQPPort))
	line("management.tcp.ip", "127.0.0.1")
	line("management.tcp.port", n.APIPort)
	// Counts in the HTTP API lag by this interval; the lab keeps it short so
	// tests see current numbers quickly.
	line("collect_statistics_interval", 500)
	line("vm_memory_high_watermark.absolute", l.MemoryLimit)
	line("disk_free_limit.absolute", l.DiskLimit)
	line("log.file.level", "info")
	line("log.console", "false")
	switch n.Role {
	case Source:
		// Like the rabbitmq Docker image: guest may log in from anywhere.
		line("loopback_users.guest", "false")
		line("default_user", SourceUser)
		line("default_pass", SourcePassword)
		line("cluster_name", "warren-lab-source")
	case Target:
		line("default_user", TargetUser)
		line("default_pass", TargetPassword)
		line("default_user_tags.administrator", "true")
		line("cluster_name", "warren-lab-target")
		// The cluster forms at first boot from a fixed member list.
		line("cluster_formation.peer_discovery_backend", "classic_config")
		for i, t := range l.NodesOf(Target) {
			line("cluster_formation.classic_config.nodes."+strconv.Itoa(i+1), t.Erlang)
		}
		// AMQPS and HTTPS beside the plain listeners. A client certificate
		// is checked when offered and not required, so one node serves
		// plain TLS and mutual TLS alike.
		f := l.TLS()
		line("listeners.ssl.1", "127.0.0.1:"+strconv.Itoa(n.AMQPSPort()))
		for _, prefix := range []string{"ssl_options", "management.ssl"} {
			line(prefix+".cacertfile", f.CA)
			line(prefix+".certfile", f.ServerCert)
			line(prefix+".keyfile", f.ServerKey)
			line(prefix+".verify", "verify_peer")
			line(prefix+".fail_if_no_peer_cert", "false")
		}
		line("management.ssl.port", n.APISPort())
		line("management.ssl.ip", "127.0.0.1")
	}
	return b.String()
}

func (n Node) path(name string) string { return filepath.Join(n.Dir, name) }

// writeNodeFiles writes a node's config files; it is cheap and idempotent.
func (l *Lab) writeNodeFiles(n Node) error {
	for _, d := range []string{n.Dir, n.path("data"), n.path("log")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	files := map[string]string{
		"rabbitmq.conf":     l.Config(n),
		"enabled_plugins":   "[" + strings.Join(Plugins, ",") + "].\n",
		"rabbitmq-env.conf": "# warren lab: settings come from the environment\n",
	}
	for name, content := range files {
		if err := os.WriteFile(n.path(name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", n.path(name), err)
		}
	}
	return nil
}

// env is the environment of a node's server and of rabbitmqctl aimed at it.
// HOME points at the lab dir so both find the shared cookie, and every path
// the Debian scripts would take from /etc or /var/lib is overridden.
func (l *Lab) env(n Node) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RABBITMQ_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+l.Dir,
		"RABBITMQ_NODENAME="+n.Erlang,
		"RABBITMQ_USE_LONGNAME=false",
		"RABBITMQ_CONF_ENV_FILE="+n.path("rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+n.path("rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+n.path("advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+n.path("enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+n.path("data"),
		"RABBITMQ_LOG_BASE="+n.path("log"),
		"RABBITMQ_PID_FILE="+n.path("rabbitmq.pid"),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.DistPort),
		// Keep Erlang distribution on loopback, like everything else.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	)
}
