package preflight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
)

// Needs is what a command needs of one side's logins and nodes.
type Needs struct {
	// Tag is the user tag the command's HTTP API calls need: management,
	// policymaker, monitoring or administrator (which implies the others).
	// Why names those calls, for the message.
	Tag, Why string
	// Vhosts are the vhosts the command works in. In each of them that
	// exists on this side, every AMQP URL's user must hold the permissions
	// asked for below (checked when the API login may read permissions,
	// that is, is an administrator).
	Vhosts                 []string
	Configure, Write, Read bool
	// CountMismatch is the status of URLs that do not reach every running
	// node of the cluster once: Fail where the command works through every
	// node, Warn where it only reports, OK not to check.
	CountMismatch Status
	// ExpectNodes is --expect-nodes (0 when not given): the cluster must
	// run that many nodes.
	ExpectNodes int
	// LoginFailure is the status of a login that fails: Fail, or Warn for
	// a command that reports logins itself (warren verify's health check).
	LoginFailure Status
}

// Side is what Endpoint learned about one side.
type Side struct {
	Findings []Finding
	// APIOK says the HTTP API login worked: checks that read the broker
	// may go ahead.
	APIOK bool
	// User and Tags are the HTTP API login's.
	User string
	Tags []string
	// Running names the cluster's running nodes, when the login may list
	// them; URLNodes the node each AMQP URL reaches ("" when unknown).
	Running  []string
	URLNodes []string
}

// identifyWait bounds how long Endpoint waits for the HTTP API to list its
// connections: at once in the connection tracking, but through NAT only in
// the statistics' list, which lags by the statistics interval (5 s by
// default).
const identifyWait = 15 * time.Second

// Endpoint logs into every AMQP URL and the HTTP API of ep and checks them
// against what the command needs: each URL's scheme speaks what its port
// speaks and its login works, the API login holds the tag the command's
// calls need, the AMQP users hold the vhost permissions, and the URLs
// reach distinct nodes, as many as the cluster runs (and --expect-nodes).
// Every outcome is a finding; nothing on the broker changes.
//
// A URL's node is the node the HTTP API lists warren's connection to it
// on (see identify).
func Endpoint(ctx context.Context, ep broker.Endpoint, n Needs) *Side {
	if n.LoginFailure == "" {
		n.LoginFailure = Fail
	}
	s := &Side{URLNodes: make([]string, len(ep.AMQP))}
	api, err := ep.NewAPI()
	if err != nil {
		s.Findings = append(s.Findings, Failf(Usage, "tls files", "%v", err))
		return s
	}

	// The AMQP logins run while the HTTP API is read: each one costs a
	// round trip or two, a refused password a few seconds.
	id := randomID()
	logins := make([]login, len(ep.AMQP))
	var wg sync.WaitGroup
	for i := range ep.AMQP {
		wg.Go(func() { logins[i] = dialOne(ctx, ep, i, id, n.Vhosts) })
	}
	var vhosts []string
	apiFindings := s.readAPI(ctx, api, ep, n, &vhosts)
	wg.Wait()
	defer func() {
		for _, l := range logins {
			if l.conn != nil {
				_ = l.conn.Close()
			}
		}
	}()

	s.Findings = append(s.Findings, apiFindings...)
	if s.APIOK && len(ep.AMQP) > 1 {
		// One URL reaches one node, whichever it is: only several need
		// telling apart (which costs up to a statistics interval).
		s.identify(ctx, api, id, logins)
	}
	for i, l := range logins {
		check := fmt.Sprintf("%s URL %d", ep.Name, i+1)
		where := broker.RedactURI(ep.AMQP[i])
		switch {
		case l.err != nil && l.vhostRefused:
			// The credentials are good; the command works in its own
			// vhosts (checked below), not necessarily in the URL's.
			s.Findings = append(s.Findings, Warnf(check, "%v: the login works, but which node this URL reaches is not known", l.err))
		case l.err != nil:
			f := Failf(Unfit, check, "%v", l.err)
			if n.LoginFailure == Warn {
				f = Warnf(check, "%v", l.err)
			}
			s.Findings = append(s.Findings, f)
		default:
			detail := fmt.Sprintf("%s: logged in as %s%s", where, ep.AMQP[i].Username, l.how)
			if s.URLNodes[i] != "" {
				detail += ", node " + s.URLNodes[i]
			}
			s.Findings = append(s.Findings, Passf(check, "%s", detail))
		}
	}
	if s.APIOK {
		s.Findings = append(s.Findings, s.nodeCounts(ep, n, logins)...)
		s.Findings = append(s.Findings, s.permissions(ctx, api, ep, n, vhosts)...)
	}
	return s
}

// login is one AMQP URL's login.
type login struct {
	conn *amqp.Connection
	user string
	err  error
	how  string // " (TLS 1.3)", " (vhost x)", ...
	// vhostRefused: the broker took the credentials but refused every
	// vhost tried.
	vhostRefused bool
}

// dialOne logs into URL i in its own vhost or, when the user may not open
// that one, in a vhost the command works in: the node a URL reaches does
// not depend on the vhost, and commands that work per vhost never use the
// URL's.
func dialOne(ctx context.Context, ep broker.Endpoint, i int, id string, vhosts []string) login {
	props := amqp.Table{propertyName: fmt.Sprintf("%s-%d", id, i)}
	candidates := []string{""}
	for _, v := range vhosts {
		if v != ep.AMQP[i].Vhost {
			candidates = append(candidates, v)
		}
	}
	var first error
	refused := true
	for n, v := range candidates {
		if n > 3 {
			break
		}
		conn, err := ep.DialNodeWith(ctx, i, v, props)
		if err == nil {
			l := login{conn: conn, user: ep.AMQP[i].Username}
			if st := conn.ConnectionState(); st.HandshakeComplete {
				l.how = " (" + tlsVersion(st.Version) + ")"
			}
			if v != "" {
				l.how += fmt.Sprintf(" in vhost %s (it may not open the URL's vhost %q)", v, ep.AMQP[i].Vhost)
			}
			return l
		}
		if first == nil {
			first = err
		}
		if !errors.Is(err, amqp.ErrVhost) && !isNotAllowed(err) {
			refused = false
			break
		}
	}
	return login{err: first, vhostRefused: refused}
}

func isNotAllowed(err error) bool {
	var aerr *amqp.Error
	return errors.As(err, &aerr) && aerr.Code == amqp.NotAllowed
}

// propertyName is the client property that names a preflight connection.
const propertyName = "warren-preflight"

func tlsVersion(v uint16) string {
	switch v {
	case 0x0304:
		return "TLS 1.3"
	case 0x0303:
		return "TLS 1.2"
	}
	return fmt.Sprintf("TLS 0x%04x", v)
}

// readAPI logs into the HTTP API, checks the login's tags and reads the
// running nodes and existing vhosts.
func (s *Side) readAPI(ctx context.Context, api *broker.API, ep broker.Endpoint, n Needs, vhosts *[]string) []Finding {
	check := ep.Name + " HTTP API"
	who, err := api.Whoami(ctx)
	var se *broker.StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusUnauthorized && se.LoginValid():
		// No tag at all lets a user into the management API.
		s.User = ep.APIUser
		return []Finding{Failf(Unfit, check, "user %q logged in at %s but has none of the tags the HTTP API needs (management, policymaker, monitoring or administrator); %s needs %s: %s",
			ep.APIUser, ep.API, n.Why, n.Tag, grant(ep, ep.APIUser, n.Tag))}
	case errors.As(err, &se) && se.Status == http.StatusUnauthorized:
		return []Finding{s.loginFailure(n, check, "%s at %s refused the login of user %q: check the user name and password (in --%s-api, or else --%s-url)",
			ep.Name, ep.API, ep.APIUser, ep.Name, ep.Name)}
	case err != nil:
		return []Finding{s.loginFailure(n, check, "%v", err)}
	}
	s.APIOK, s.User, s.Tags = true, who.Name, who.Tags
	var out []Finding
	if n.Tag != "" {
		if hasTag(who.Tags, n.Tag) {
			out = append(out, Passf(check, "%s: user %s, tags [%s]; %s needs %s", ep.API, who.Name, strings.Join(who.Tags, ", "), n.Why, n.Tag))
		} else {
			out = append(out, Failf(Unfit, check, "%s: user %q has tags [%s], but %s needs the %s tag: %s",
				ep.API, who.Name, strings.Join(who.Tags, ", "), n.Why, n.Tag, grant(ep, who.Name, n.Tag)))
		}
	} else {
		out = append(out, Passf(check, "%s: user %s, tags [%s]", ep.API, who.Name, strings.Join(who.Tags, ", ")))
	}
	if hasTag(who.Tags, "monitoring") {
		nodes, err := api.ListNodes(ctx)
		if err != nil {
			out = append(out, s.loginFailure(n, ep.Name+" nodes", "%v", err))
		}
		for _, nd := range nodes {
			if nd.Running {
				s.Running = append(s.Running, nd.Name)
			}
		}
		sort.Strings(s.Running)
	}
	if len(n.Vhosts) > 0 {
		if have, err := api.ListVhosts(ctx); err == nil {
			*vhosts = have
		}
	}
	return out
}

func (s *Side) loginFailure(n Needs, check, format string, a ...any) Finding {
	if n.LoginFailure == Warn {
		return Warnf(check, format, a...)
	}
	return Failf(Unfit, check, format, a...)
}

// grant says how to give user the tag on ep's broker.
func grant(ep broker.Endpoint, user, tag string) string {
	return fmt.Sprintf("grant it with `rabbitmqctl set_user_tags %s %s` on the %s (this replaces the user's tags: list any it keeps), or log in as a user that has it",
		shellQuote(user), tag, ep.Name)
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// hasTag reports whether tags grant what tag grants: administrator implies
// every tag, monitoring and policymaker imply management.
func hasTag(tags []string, tag string) bool {
	implied := map[string][]string{
		"management":    {"management", "policymaker", "monitoring", "administrator"},
		"policymaker":   {"policymaker", "administrator"},
		"monitoring":    {"monitoring", "administrator"},
		"administrator": {"administrator"},
	}
	ok, known := implied[tag]
	if !known {
		ok = []string{tag, "administrator"}
	}
	for _, t := range tags {
		if slices.Contains(ok, t) {
			return true
		}
	}
	return false
}

// identify finds the node of every URL that logged in. The broker's
// connection tracking lists a connection as soon as it is open, by the
// socket's addresses: a connection found there under its own addresses is
// the URL's. Through NAT or a port forward the broker sees other
// addresses; then the connection is found by its client property in the
// statistics' connection list, which lags by the statistics interval.
func (s *Side) identify(ctx context.Context, api *broker.API, id string, logins []login) {
	want := 0
	names := map[string]int{}
	for i, l := range logins {
		if l.conn != nil {
			want++
			if n := broker.TrackedName(l.conn.LocalAddr(), l.conn.RemoteAddr()); n != "" {
				names[n] = i
			}
		}
	}
	if want == 0 {
		return
	}
	api = api.WithPolicy(api.Policy().NoRetry())
	start := time.Now()
	deadline := start.Add(identifyWait)
	for {
		if tracked, err := api.ListTrackedConnections(ctx); err == nil {
			for _, c := range tracked {
				if i, ok := names[c.Name]; ok && c.User == logins[i].user {
					s.URLNodes[i] = c.Node
				}
			}
		}
		if s.found(logins) < want && time.Since(start) > time.Second {
			if conns, err := api.ListConnections(ctx, ""); err == nil {
				for _, c := range conns {
					tag, _ := c.ClientProperties[propertyName].(string)
					for i := range logins {
						if tag == fmt.Sprintf("%s-%d", id, i) && logins[i].conn != nil {
							s.URLNodes[i] = c.Node
						}
					}
				}
			}
		}
		if s.found(logins) == want || time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// found counts the logins whose node is known.
func (s *Side) found(logins []login) int {
	n := 0
	for i, l := range logins {
		if l.conn != nil && s.URLNodes[i] != "" {
			n++
		}
	}
	return n
}

// nodeCounts checks that the URLs reach distinct nodes, every running node
// once, and that the cluster runs --expect-nodes nodes.
func (s *Side) nodeCounts(ep broker.Endpoint, n Needs, logins []login) []Finding {
	var out []Finding
	check := ep.Name + " nodes"
	byNode := map[string][]int{}
	unknown := 0
	for i, l := range logins {
		switch {
		case l.conn == nil:
		case s.URLNodes[i] == "" && len(logins) > 1:
			unknown++
		case s.URLNodes[i] == "":
		default:
			byNode[s.URLNodes[i]] = append(byNode[s.URLNodes[i]], i)
		}
	}
	nodes := make([]string, 0, len(byNode))
	for node := range byNode {
		nodes = append(nodes, node)
	}
	sort.Strings(nodes)
	dup := false
	for _, node := range nodes {
		idx := byNode[node]
		if len(idx) < 2 {
			continue
		}
		dup = true
		var urls []string
		for _, i := range idx {
			urls = append(urls, fmt.Sprintf("%d (%s:%d)", i+1, ep.AMQP[i].Host, ep.AMQP[i].Port))
		}
		out = append(out, Failf(Usage, check, "--%s-url: URLs %s all reach node %s: give one URL per node, each reaching another node",
			ep.Name, strings.Join(urls, ", "), node))
	}
	if unknown > 0 {
		out = append(out, Warnf(check, "the HTTP API did not list %d of warren's connections within %s: which node those URLs reach is not known", unknown, identifyWait))
	}
	if len(ep.AMQP) == 1 && logins[0].conn != nil && len(s.Running) > 1 && n.CountMismatch != OK {
		f := Finding{Check: check, Status: n.CountMismatch,
			Detail: fmt.Sprintf("the %s runs %d nodes (%s), but --%s-url names one URL: give one URL per running node",
				ep.Name, len(s.Running), strings.Join(s.Running, ", "), ep.Name)}
		if f.Status == Fail {
			f.Class = Unfit
		}
		out = append(out, f)
	}
	if len(s.Running) > 0 && n.CountMismatch != OK && unknown == 0 && len(nodes) == len(ep.AMQP) && len(ep.AMQP) > 1 {
		var missing []string
		for _, r := range s.Running {
			if _, ok := byNode[r]; !ok {
				missing = append(missing, r)
			}
		}
		if len(missing) > 0 {
			f := Finding{Check: check, Status: n.CountMismatch,
				Detail: fmt.Sprintf("the %s runs %d nodes, but the %d URL(s) of --%s-url reach only %s: no URL reaches %s; give one URL per running node",
					ep.Name, len(s.Running), len(ep.AMQP), ep.Name, strings.Join(nodes, ", "), strings.Join(missing, ", "))}
			if f.Status == Fail {
				f.Class = Unfit
			}
			out = append(out, f)
		}
	}
	if len(s.Running) > 0 && n.ExpectNodes > 0 && n.ExpectNodes != len(s.Running) {
		out = append(out, Failf(Unfit, check, "--expect-nodes %d, but the %s runs %d node(s) (%s): start the missing nodes, or pass --expect-nodes %d",
			n.ExpectNodes, ep.Name, len(s.Running), strings.Join(s.Running, ", "), len(s.Running)))
	}
	if len(out) == 0 && !dup && len(nodes) > 0 {
		detail := fmt.Sprintf("%d URL(s) reach %d distinct node(s)", len(ep.AMQP), len(nodes))
		if len(s.Running) > 0 {
			detail += fmt.Sprintf(" of %d running", len(s.Running))
		}
		out = append(out, Passf(check, "%s", detail))
	}
	return out
}

// permissions checks the AMQP users' permissions in the vhosts the command
// works in that exist on this side. Reading another user's permissions
// needs the administrator tag; without it they are not checked here (the
// command's own calls still fail with the broker's answer).
func (s *Side) permissions(ctx context.Context, api *broker.API, ep broker.Endpoint, n Needs, existing []string) []Finding {
	if !(n.Configure || n.Write || n.Read) || len(n.Vhosts) == 0 || !hasTag(s.Tags, "administrator") {
		return nil
	}
	var users []string
	for _, u := range ep.AMQP {
		if !slices.Contains(users, u.Username) {
			users = append(users, u.Username)
		}
	}
	check := ep.Name + " permissions"
	var out []Finding
	for _, user := range users {
		perms, err := api.ListUserPermissions(ctx, user)
		if broker.IsNotFound(err) {
			out = append(out, Failf(Unfit, check, "user %q of --%s-url does not exist on the %s (the HTTP API logs in as %q)", user, ep.Name, ep.Name, s.User))
			continue
		}
		if err != nil {
			out = append(out, Warnf(check, "user %s's permissions not checked: %v", user, err))
			continue
		}
		var problems, fine []string
		for _, v := range n.Vhosts {
			if !slices.Contains(existing, v) {
				continue
			}
			i := slices.IndexFunc(perms, func(p broker.Permissions) bool { return p.Vhost == v })
			if i < 0 {
				problems = append(problems, fmt.Sprintf("no permissions in vhost %s: `rabbitmqctl set_permissions -p %s %s '.*' '.*' '.*'`", v, shellQuote(v), shellQuote(user)))
				continue
			}
			p := perms[i]
			var lacking []string
			for _, c := range []struct {
				need    bool
				name, p string
			}{{n.Configure, "configure", p.Configure}, {n.Write, "write", p.Write}, {n.Read, "read", p.Read}} {
				if c.need && c.p == "" {
					lacking = append(lacking, c.name)
				}
			}
			if len(lacking) > 0 {
				problems = append(problems, fmt.Sprintf("no %s permission in vhost %s (configure %q, write %q, read %q)", strings.Join(lacking, " or "), v, p.Configure, p.Write, p.Read))
				continue
			}
			fine = append(fine, v)
		}
		if len(problems) > 0 {
			out = append(out, Failf(Unfit, check, "user %s on the %s: %s; %s needs them", user, ep.Name, strings.Join(problems, "; "), n.Why))
		} else if len(fine) > 0 {
			out = append(out, Passf(check, "user %s may %s in %s", user, verbs(n), strings.Join(fine, ", ")))
		}
	}
	return out
}

func verbs(n Needs) string {
	var v []string
	if n.Configure {
		v = append(v, "configure")
	}
	if n.Write {
		v = append(v, "write")
	}
	if n.Read {
		v = append(v, "read")
	}
	return strings.Join(v, ", ")
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Has reports whether the side's HTTP API login holds what tag grants.
func (s *Side) Has(tag string) bool { return s.APIOK && hasTag(s.Tags, tag) }

// Endpoints checks two sides at once (see Endpoint).
func Endpoints(ctx context.Context, a broker.Endpoint, na Needs, b broker.Endpoint, nb Needs) (*Side, *Side) {
	var sa *Side
	done := make(chan struct{})
	go func() {
		defer close(done)
		sa = Endpoint(ctx, a, na)
	}()
	sb := Endpoint(ctx, b, nb)
	<-done
	return sa, sb
}
