package verify

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
)

type (
	nodeInfo  = broker.NodeInfo
	queueInfo = broker.QueueInfo
)

// serviceEndpoint builds the client Service's endpoint: its AMQP URL with
// the target's credentials when the URL has none, and the target's TLS.
func (s *session) serviceEndpoint() (*broker.Endpoint, error) {
	if s.opts.ServiceURL == "" && s.opts.ServiceAPI == "" {
		return nil, nil
	}
	t := s.opts.Target
	ep := &broker.Endpoint{Name: "service", TLS: t.TLS, Timeout: t.Timeout, APIUser: t.APIUser, APIPassword: t.APIPassword}
	if s.opts.ServiceURL != "" {
		u, err := url.Parse(s.opts.ServiceURL)
		if err != nil {
			return nil, fmt.Errorf("verify: service URL %q: %w", broker.Redact(s.opts.ServiceURL), err)
		}
		uri, err := amqp.ParseURI(s.opts.ServiceURL)
		if err != nil {
			return nil, fmt.Errorf("verify: service URL %q: %w", broker.Redact(s.opts.ServiceURL), err)
		}
		// amqp.ParseURI fills in guest/guest when the URL has no user; a
		// Service URL without one means "the target's credentials".
		if u.User == nil {
			uri.Username, uri.Password = t.AMQP[0].Username, t.AMQP[0].Password
		}
		ep.AMQP = []amqp.URI{uri}
	}
	if s.opts.ServiceAPI != "" {
		api, user, pass, err := parseAPI(s.opts.ServiceAPI)
		if err != nil {
			return nil, fmt.Errorf("verify: service API: %w", err)
		}
		ep.API = api
		if user != "" {
			ep.APIUser, ep.APIPassword = user, pass
		}
	}
	return ep, nil
}

// parseAPI validates an HTTP API base URL and splits off its credentials.
func parseAPI(raw string) (api, user, pass string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", "", fmt.Errorf("%q: want http://host:port or https://host:port", broker.Redact(raw))
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api")
	return u.String(), user, pass, nil
}

func (s *session) health(ctx context.Context, service *broker.Endpoint) {
	// Logins run at once: a refused password costs RabbitMQ's few-second
	// delay and an unreachable node the dial timeout, per node.
	var logins []job
	t := s.opts.Target
	for i, u := range t.AMQP {
		logins = append(logins, job{fmt.Sprintf("amqp login %s:%d", u.Host, u.Port), func() outcome { return amqpLogin(ctx, t, i) }})
	}
	apis := []string{t.API}
	for _, raw := range append(slices.Clone(t.NodeAPIs), s.opts.NodeAPIs...) {
		api, _, _, err := parseAPI(raw)
		if err != nil {
			logins = append(logins, job{"http login " + broker.Redact(raw), func() outcome { return failf("node API URL %v", err) }})
			continue
		}
		if !slices.Contains(apis, api) {
			apis = append(apis, api)
		}
	}
	for _, api := range apis {
		ep := t
		ep.API = api
		logins = append(logins, job{"http login " + api, func() outcome { return httpLogin(ctx, ep) }})
	}
	if service != nil {
		if len(service.AMQP) > 0 {
			u := service.AMQP[0]
			logins = append(logins, job{fmt.Sprintf("amqp login service %s:%d", u.Host, u.Port), func() outcome { return amqpLogin(ctx, *service, 0) }})
		}
		if service.API != "" {
			logins = append(logins, job{"http login service " + service.API, func() outcome { return httpLogin(ctx, *service) }})
		}
	}
	s.parallel(ctx, AreaHealth, logins)

	var nodes []nodeInfo
	var nodesErr error
	s.check(ctx, AreaHealth, "running nodes", func() outcome {
		nodes, nodesErr = s.target.ListNodes(ctx)
		return runningNodes(nodes, nodesErr, s.opts.ExpectNodes)
	})
	s.check(ctx, AreaHealth, "alarms", func() outcome { return alarms(nodes, nodesErr) })
	s.check(ctx, AreaHealth, "partitions", func() outcome { return partitions(nodes, nodesErr) })
	var queues []queueInfo
	var queuesErr error
	s.check(ctx, AreaHealth, "quorum queues", func() outcome {
		if nodesErr != nil {
			return failf("list nodes: %v", nodesErr)
		}
		if queues, queuesErr = s.userQuorumQueues(ctx); queuesErr != nil {
			return failf("%v", queuesErr)
		}
		return quorumQueues(queues, nodes)
	})
	s.check(ctx, AreaHealth, "quorum leaders", func() outcome {
		switch {
		case nodesErr != nil:
			return failf("list nodes: %v", nodesErr)
		case queuesErr != nil:
			return failf("%v", queuesErr)
		}
		return quorumLeaders(queues, nodes, s.opts.Vhosts)
	})
}

// amqpLogin opens and closes a connection to node i, and says which broker
// and TLS version answered.
func amqpLogin(ctx context.Context, ep broker.Endpoint, i int) outcome {
	conn, err := ep.DialNode(ctx, i, "")
	if err != nil {
		return failf("%v", err)
	}
	defer conn.Close()
	detail := fmt.Sprintf("user %s", ep.AMQP[i].Username)
	if v, ok := conn.Properties["version"].(string); ok {
		detail += ", RabbitMQ " + v
	}
	if ep.AMQP[i].Scheme == "amqps" {
		detail += ", " + tls.VersionName(conn.ConnectionState().Version)
		if len(ep.TLS.CertFile) > 0 {
			detail += " with client certificate"
		}
	}
	return passf("%s", detail)
}

// httpLogin checks that the API accepts the credentials and says which node
// answered and with which user tags.
func httpLogin(ctx context.Context, ep broker.Endpoint) outcome {
	// This very API: a client that failed over to another node's would
	// report a node that is down as answering.
	api, err := ep.NodeAPI(ep.API)
	if err != nil {
		return failf("%v", err)
	}
	who, err := api.Whoami(ctx)
	if err != nil {
		return failf("%v", err)
	}
	ov, err := api.Overview(ctx)
	if err != nil {
		return failf("logged in as %s, but GET /api/overview failed: %v", who.Name, err)
	}
	detail := fmt.Sprintf("user %s (tags %v), node %s, RabbitMQ %s", who.Name, who.Tags, ov.Node, ov.RabbitMQVersion)
	if strings.HasPrefix(ep.API, "https://") {
		detail += ", TLS"
	}
	return passf("%s", detail)
}

func runningNodes(nodes []nodeInfo, err error, expect int) outcome {
	if err != nil {
		return failf("list nodes: %v", err)
	}
	var running, down []string
	for _, n := range nodes {
		if n.Running {
			running = append(running, n.Name)
		} else {
			down = append(down, n.Name)
		}
	}
	detail := fmt.Sprintf("%d of %d expected nodes running", len(running), expect)
	if len(down) > 0 {
		detail += "; not running: " + strings.Join(down, ", ")
	}
	if len(running) != expect {
		return failf("%s (expected %d, set with --expect-nodes)", detail, expect)
	}
	return passf("%s: %s", detail, strings.Join(running, ", "))
}

func alarms(nodes []nodeInfo, err error) outcome {
	if err != nil {
		return failf("list nodes: %v", err)
	}
	var bad []string
	for _, n := range nodes {
		if n.MemAlarm {
			bad = append(bad, n.Name+": memory alarm (publishers are blocked)")
		}
		if n.DiskAlarm {
			bad = append(bad, n.Name+": disk alarm (publishers are blocked)")
		}
	}
	if len(bad) > 0 {
		return failf("%s", strings.Join(bad, "; "))
	}
	return passf("no memory or disk alarm on %d running nodes", runningCount(nodes))
}

func partitions(nodes []nodeInfo, err error) outcome {
	if err != nil {
		return failf("list nodes: %v", err)
	}
	var bad []string
	for _, n := range nodes {
		if len(n.Partitions) > 0 {
			bad = append(bad, fmt.Sprintf("%s is partitioned from %s", n.Name, strings.Join(n.Partitions, ", ")))
		}
	}
	if len(bad) > 0 {
		return failf("%s", strings.Join(bad, "; "))
	}
	return passf("no network partition seen by %d running nodes", runningCount(nodes))
}

// userQuorumQueues lists the quorum queues of the vhosts verified (every
// vhost when none is named), leaving out verify's own.
func (s *session) userQuorumQueues(ctx context.Context) ([]queueInfo, error) {
	cols := []string{"name", "vhost", "type", "members", "online", "leader", "arguments"}
	var queues []queueInfo
	if len(s.opts.Vhosts) == 0 {
		qs, err := s.target.ListQueues(ctx, "", cols...)
		if err != nil {
			return nil, err
		}
		queues = qs
	} else {
		for _, v := range s.opts.Vhosts {
			qs, err := s.target.ListQueues(ctx, v, cols...)
			if err != nil {
				return nil, err
			}
			queues = append(queues, qs...)
		}
	}
	out := queues[:0]
	for _, q := range queues {
		if q.Type == "quorum" && !strings.HasPrefix(q.Name, Prefix) {
			out = append(out, q)
		}
	}
	return out, nil
}

// quorumQueues checks that every quorum queue has as many members as the
// cluster gives it (all nodes, or x-quorum-initial-group-size of them), that
// every member is online, and that it has an online leader.
func quorumQueues(queues []queueInfo, nodes []nodeInfo) outcome {
	var cluster []string
	running := map[string]bool{}
	for _, n := range nodes {
		cluster = append(cluster, n.Name)
		running[n.Name] = n.Running
	}
	var bad []string
	count := 0
	for _, q := range queues {
		count++
		if p := quorumProblem(q, cluster, running); p != "" {
			bad = append(bad, fmt.Sprintf("%s/%s: %s", q.Vhost, q.Name, p))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		return failf("%d of %d quorum queues degraded: %s", len(bad), count, limit(bad, 20))
	}
	if count == 0 {
		return passf("no quorum queues to check")
	}
	return passf("%d quorum queues, each with every member online and a leader", count)
}

// The queue's online list and leader come from statistics the leader emits
// every few seconds, so right after a node stops they still name it; a
// member on a node that /api/nodes reports stopped counts as offline.
func quorumProblem(q queueInfo, cluster []string, running map[string]bool) string {
	want := len(cluster)
	if size, ok := intArg(q.Arguments["x-quorum-initial-group-size"]); ok && size > 0 && size < want {
		want = size
	}
	var problems []string
	if len(q.Members) < want {
		var missing []string
		if want == len(cluster) {
			for _, n := range cluster {
				if !slices.Contains(q.Members, n) {
					missing = append(missing, n)
				}
			}
		}
		p := fmt.Sprintf("%d of %d members", len(q.Members), want)
		if len(missing) > 0 {
			p += " (no member on " + strings.Join(missing, ", ") + ")"
		}
		problems = append(problems, p)
	}
	var offline []string
	for _, m := range q.Members {
		if !slices.Contains(q.Online, m) || !running[m] {
			offline = append(offline, m)
		}
	}
	if len(offline) > 0 {
		problems = append(problems, "offline member "+strings.Join(offline, ", "))
	}
	if q.Leader == "" || !slices.Contains(q.Online, q.Leader) || !running[q.Leader] {
		problems = append(problems, "no leader")
	}
	return strings.Join(problems, ", ")
}

// intArg reads an integer argument as decoded from the API's JSON.
func intArg(v any) (int, bool) {
	switch n := v.(type) {
	case float64:
		return int(n), true
	case string:
		i, err := strconv.Atoi(n)
		return i, err == nil
	}
	return 0, false
}

func runningCount(nodes []nodeInfo) int {
	n := 0
	for _, ni := range nodes {
		if ni.Running {
			n++
		}
	}
	return n
}
