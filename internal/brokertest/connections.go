package brokertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warrenmq/warren/broker"
)

// Connections lists the connections of vhost whose client named them
// clientName (the connection_name client property); all of them when
// clientName is empty. The list lags the broker by the statistics interval.
func Connections(ctx context.Context, api *broker.API, vhost, clientName string) ([]broker.ConnectionInfo, error) {
	all, err := api.ListConnections(ctx, vhost)
	if err != nil {
		return nil, err
	}
	var out []broker.ConnectionInfo
	for _, c := range all {
		if clientName == "" || c.UserProvidedName == clientName {
			out = append(out, c)
		}
	}
	return out, nil
}

// CloseConnections closes, through the HTTP API, every connection of vhost
// that its client named clientName, as an operator or a dying node would.
// It waits up to 15s for at least one to be listed, fails the test if none
// is, and returns how many it closed.
func CloseConnections(t testing.TB, api *broker.API, vhost, clientName string) int {
	t.Helper()
	ctx := context.Background()
	var conns []broker.ConnectionInfo
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
	for _, c := range conns {
		if err := api.CloseConnection(ctx, c.Name); err != nil {
			t.Fatal(err)
		}
	}
	return len(conns)
}

// Ctl runs rabbitmqctl against one lab node ("source", "target-2") and
// returns its output, failing the test when it fails. Only disruptive tests
// (NewDisruptive) should change a node's settings with it.
func (e *Env) Ctl(t testing.TB, nodeID string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := e.Lab.Ctl(ctx, nodeID, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
