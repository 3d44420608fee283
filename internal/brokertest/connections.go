package brokertest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/lab"
)

// Connection is a client connection as the HTTP API lists it.
type Connection struct {
	Name             string `json:"name"` // the API's key, e.g. "127.0.0.1:5432 -> 127.0.0.1:5701"
	Node             string `json:"node"`
	Vhost            string `json:"vhost"`
	State            string `json:"state"` // running, blocking, blocked, ...
	ClientProperties struct {
		ConnectionName string `json:"connection_name"`
	} `json:"client_properties"`
}

// Connections lists the connections of vhost whose client named them
// clientName (the connection_name client property); all of them when
// clientName is empty. The list lags the broker by the statistics interval.
func Connections(ctx context.Context, api *broker.API, vhost, clientName string) ([]Connection, error) {
	var all []Connection
	if err := api.Get(ctx, "vhosts/"+broker.PathEscape(vhost)+"/connections", &all); err != nil {
		return nil, fmt.Errorf("list connections of %s: %w", vhost, err)
	}
	var out []Connection
	for _, c := range all {
		if clientName == "" || c.ClientProperties.ConnectionName == clientName {
			out = append(out, c)
		}
	}
	return out, nil
}

// CloseConnections closes, through the HTTP API (DELETE
// /api/connections/{name}), every connection of vhost that its client
// named clientName, as an operator or a dying node would. It waits up to
// 15s for at least one to be listed, fails the test if none is, and
// returns how many it closed.
func CloseConnections(t testing.TB, api *broker.API, vhost, clientName string) int {
	t.Helper()
	ctx := context.Background()
	var conns []Connection
	Eventually(t, 15*time.Second, func() error {
		var err error
		if conns, err = Connections(ctx, api, vhost, clientName); err != nil {
			return err
		}
		if len(conns) == 0 {
			return fmt.Errorf("no connection named %q in vhost %s yet", clientName, vhost)
		}
		return nil
	})
	closed := 0
	for _, c := range conns {
		err := api.Do(ctx, http.MethodDelete, "connections/"+broker.PathEscape(c.Name), nil, nil)
		if err != nil && !broker.IsNotFound(err) {
			t.Fatalf("close connection %s: %v", c.Name, err)
		}
		if err == nil {
			closed++
		}
	}
	return closed
}

// Ctl runs rabbitmqctl against one lab node ("source", "target-2") and
// returns its output, failing the test when it fails. Only disruptive tests
// (NewDisruptive) should change a node's settings with it.
func (e *Env) Ctl(t testing.TB, nodeID string, args ...string) string {
	t.Helper()
	n, ok := e.Lab.Node(nodeID)
	if !ok {
		t.Fatalf("no lab node %q", nodeID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, lab.CtlBin, append([]string{"-n", n.Erlang}, args...)...)
	// rabbitmqctl finds the lab's Erlang cookie in $HOME.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RABBITMQ_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+e.Lab.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl -n %s %s: %v\n%s", n.Erlang, strings.Join(args, " "), err, out)
	}
	return string(out)
}
