package definitions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
)

// Broker is what Export and Check learn about a broker before reading its
// definitions.
type Broker struct {
	Name          string   `json:"name"` // the endpoint's label: "source", "target"
	Version       string   `json:"version"`
	ClusterName   string   `json:"cluster_name"`
	ExchangeTypes []string `json:"exchange_types"`
	// Applications are the Erlang applications running on every node, so
	// plugins among them (rabbitmq_federation, rabbitmq_shovel, ...).
	Applications []string `json:"applications"`
	User         string   `json:"user"`
	UserTags     []string `json:"user_tags"`
}

// Probe reads a broker's overview, nodes and login. Its errors are
// ClassPreflight and say what is wrong: unreachable, login refused, not
// RabbitMQ.
func Probe(ctx context.Context, api *broker.API) (*Broker, error) {
	ep := api.Endpoint()
	ov, err := api.Overview(ctx)
	if err != nil {
		return nil, &Error{Class: ClassPreflight, Err: explainAPI(ep, err)}
	}
	if ov.RabbitMQVersion == "" || ov.ManagementVersion == "" {
		return nil, classed(ClassPreflight, "%s at %s answers /api/overview without a RabbitMQ version: is this a RabbitMQ management API?", ep.Name, ep.API)
	}
	b := &Broker{Name: ep.Name, Version: ov.RabbitMQVersion, ClusterName: ov.ClusterName}
	for _, t := range ov.ExchangeTypes {
		b.ExchangeTypes = append(b.ExchangeTypes, t.Name)
	}
	who, err := api.Whoami(ctx)
	if err != nil {
		return nil, &Error{Class: ClassPreflight, Err: explainAPI(ep, err)}
	}
	b.User = who.Name
	b.UserTags = who.Tags
	if !slices.Contains(b.UserTags, "administrator") && !slices.Contains(b.UserTags, "monitoring") {
		// /api/nodes needs monitoring or administrator; the preflight
		// check reports the missing tag rather than a refused login.
		return b, nil
	}
	apps, err := applications(ctx, api)
	if err != nil {
		return nil, &Error{Class: ClassPreflight, Err: explainAPI(ep, err)}
	}
	b.Applications = apps
	return b, nil
}

// applicationsWait bounds how long applications waits for nodes that the
// HTTP API lists as running but without their applications.
const applicationsWait = 30 * time.Second

// applications returns the Erlang applications that every running node
// runs: a plugin enabled on one node of three is as good as missing.
//
// The HTTP API lags behind nodes that have just started: it lists such a
// node as running with no applications at all for about five seconds, and
// after a whole cluster restarts it lists every node so. Read as it stands,
// that looks like a cluster without any plugin. So while a running node
// reports no applications, it reads them again, for up to applicationsWait;
// then it takes what every reporting node runs, and fails when none
// reports. Nodes that report may still differ in incidental applications
// (syslog comes and goes), which is why only silence is waited out.
func applications(ctx context.Context, api *broker.API) ([]string, error) {
	deadline := time.Now().Add(applicationsWait)
	if !StatsWait(ctx) {
		deadline = time.Now()
	}
	for {
		nodes, err := api.ListNodes(ctx)
		if err != nil {
			return nil, err
		}
		count := map[string]int{}
		reporting := 0
		var silent []string
		for _, n := range nodes {
			switch {
			case !n.Running:
			case len(n.Applications) == 0:
				silent = append(silent, n.Name)
			default:
				reporting++
				for _, a := range n.Applications {
					count[a.Name]++
				}
			}
		}
		if len(silent) == 0 || time.Now().After(deadline) {
			if reporting == 0 {
				return nil, fmt.Errorf("the HTTP API lists no running node's applications (silent: %s) after %s: are the nodes still starting?",
					strings.Join(silent, ", "), time.Since(deadline.Add(-applicationsWait)).Round(time.Second))
			}
			var common []string
			for name, c := range count {
				if c == reporting {
					common = append(common, name)
				}
			}
			sort.Strings(common)
			return common, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Export reads every definition of the broker behind api: all vhosts, with
// their metadata (description, tags, default queue type) added from
// /api/vhosts where the broker's export leaves it out (3.10 does). Use
// (*Definitions).Only to look at some vhosts. Its errors are ClassPreflight
// when the broker cannot be read at all.
func Export(ctx context.Context, api *broker.API) (*Definitions, error) {
	if _, err := Probe(ctx, api); err != nil {
		return nil, err
	}
	return export(ctx, api)
}

func export(ctx context.Context, api *broker.API) (*Definitions, error) {
	ep := api.Endpoint()
	d := New()
	if err := api.GetDefinitions(ctx, d); err != nil {
		return nil, &Error{Class: ClassPreflight, Err: explainAPI(ep, err)}
	}
	// Entries are decoded one by one: a vhost deleted while the list is
	// built comes back as an empty list ([]) instead of an object.
	vhosts, err := api.ListVhostMetadata(ctx)
	if err != nil {
		return nil, &Error{Class: ClassPreflight, Err: explainAPI(ep, err)}
	}
	meta := map[string]Object{}
	for _, raw := range vhosts {
		var v Object
		if json.Unmarshal(raw, &v) == nil && v != nil {
			meta[v.Name()] = v
		}
	}
	for _, v := range d.Sections[KindVhost] {
		addVhostMetadata(v, meta[v.Name()])
	}
	return d, nil
}

// addVhostMetadata copies description, tags and default queue type from the
// vhost list into an exported vhost that lacks them. Empty values are left
// out, so that a vhost without metadata looks the same on every version.
func addVhostMetadata(v, listed Object) {
	if listed == nil {
		return
	}
	if !v.Has("description") && listed.Str("description") != "" {
		v["description"] = listed["description"]
	}
	if !v.Has("tags") && len(listed.Tags()) > 0 {
		v.Set("tags", listed.Tags())
	}
	if dqt := listed.Str("default_queue_type"); !v.Has("default_queue_type") && dqt != "" && dqt != "undefined" {
		v["default_queue_type"] = listed["default_queue_type"]
	}
}

// explainAPI turns an HTTP API failure into a message that says what to fix.
func explainAPI(ep broker.Endpoint, err error) error {
	var se *broker.StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case http.StatusUnauthorized:
			if strings.Contains(se.Body, `"Not `) {
				// The management plugin answers 401 "Not administrator user"
				// (or monitor, management) to a valid login without the tag.
				return fmt.Errorf("%s user %q may not read this at %s: it needs the administrator tag (%w)", ep.Name, ep.APIUser, ep.API, err)
			}
			if se.LoginValid() {
				return fmt.Errorf("%s user %q logged in at %s but may not make this call: it needs the administrator tag (%w)", ep.Name, ep.APIUser, ep.API, err)
			}
			return fmt.Errorf("%s refused the login of user %q at %s: check the user name and password (%w)", ep.Name, ep.APIUser, ep.API, err)
		case http.StatusForbidden:
			return fmt.Errorf("%s user %q may not read this at %s: it needs the administrator tag (%w)", ep.Name, ep.APIUser, ep.API, err)
		case http.StatusNotFound:
			return fmt.Errorf("%s at %s has no such path: is this a RabbitMQ management API? (%w)", ep.Name, ep.API, err)
		}
	}
	return err
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return b
}
