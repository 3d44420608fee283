package preflight_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab"
	"github.com/warrenmq/warren/preflight"
)

// findings renders a side's findings one per line, "check status detail".
func findings(s *preflight.Side) string {
	var b strings.Builder
	for _, f := range s.Findings {
		fmt.Fprintf(&b, "%s %s %s\n", f.Check, f.Status, f.Detail)
	}
	return b.String()
}

func failed(s *preflight.Side) []preflight.Finding {
	r := preflight.Report{Findings: s.Findings}
	return r.Failed()
}

// targetWith is the lab's target with other AMQP URLs.
func targetWith(t *testing.T, e *brokertest.Env, urls ...string) broker.Endpoint {
	t.Helper()
	ep, err := broker.ParseEndpoint("target", strings.Join(urls, ","), e.Target.API, e.Target.TLS)
	require.NoError(t, err)
	return ep
}

func url(user, pass, scheme string, port int) string {
	return fmt.Sprintf("%s://%s:%s@127.0.0.1:%d/", scheme, user, pass, port)
}

func TestEndpointFindsTheNodeEachURLReaches(t *testing.T) {
	e := brokertest.New(t)
	if e.Target.API != e.Lab.TargetEndpoint().API {
		t.Skip("needs the lab's three target nodes")
	}
	ctx := context.Background()
	nodes := e.Lab.NodesOf(lab.Target)
	all := func(user, pass string) []string {
		var out []string
		for _, n := range nodes {
			out = append(out, url(user, pass, "amqp", n.AMQPPort))
		}
		return out
	}
	admin := preflight.Needs{Tag: "administrator", Why: "definitions import", Vhosts: []string{e.Vhost}, Write: true, CountMismatch: preflight.Fail}

	t.Run("one URL per node", func(t *testing.T) {
		s := preflight.Endpoint(ctx, targetWith(t, e, all(lab.TargetUser, lab.TargetPassword)...), admin)
		require.Empty(t, failed(s), findings(s))
		assert.Len(t, s.Running, 3)
		assert.ElementsMatch(t, s.Running, s.URLNodes, "each URL reaches another running node")
		assert.Contains(t, findings(s), "3 URL(s) reach 3 distinct node(s) of 3 running")
		assert.Contains(t, findings(s), "user admin may write in "+e.Vhost)
	})
	t.Run("one node three times", func(t *testing.T) {
		one := url(lab.TargetUser, lab.TargetPassword, "amqp", nodes[0].AMQPPort)
		local := strings.Replace(one, "127.0.0.1", "localhost", 1)
		s := preflight.Endpoint(ctx, targetWith(t, e, one, local, one), admin)
		f := failed(s)
		require.Len(t, f, 1, findings(s))
		assert.Equal(t, preflight.Usage, f[0].Class)
		assert.Contains(t, f[0].Detail, "URLs 1 (127.0.0.1:"+fmt.Sprint(nodes[0].AMQPPort)+"), 2 (localhost:")
		assert.Contains(t, f[0].Detail, "all reach node "+nodes[0].Erlang)
	})
	t.Run("a node no URL reaches, and --expect-nodes", func(t *testing.T) {
		n := admin
		n.ExpectNodes = 5
		s := preflight.Endpoint(ctx, targetWith(t, e, all(lab.TargetUser, lab.TargetPassword)[:2]...), n)
		got := findings(s)
		assert.Contains(t, got, "no URL reaches "+nodes[2].Erlang)
		assert.Contains(t, got, "--expect-nodes 5, but the target runs 3 node(s)")
		assert.Len(t, failed(s), 2, got)
	})
	t.Run("amqps on the plain port, a wrong password", func(t *testing.T) {
		urls := all(lab.TargetUser, lab.TargetPassword)
		urls[0] = url(lab.TargetUser, lab.TargetPassword, "amqps", nodes[0].AMQPPort)
		urls[1] = url(lab.TargetUser, "wrong", "amqp", nodes[1].AMQPPort)
		s := preflight.Endpoint(ctx, targetWith(t, e, urls...), admin)
		got := findings(s)
		assert.Contains(t, got, "target URL 1 fail")
		assert.Contains(t, got, "does not speak TLS")
		assert.Contains(t, got, "target URL 2 fail")
		assert.Contains(t, got, "check the user name and password")
		assert.NotContains(t, got, "wrong", "no password is printed")
	})
	t.Run("TLS", func(t *testing.T) {
		ep := e.Lab.TargetTLSEndpoint()
		s := preflight.Endpoint(ctx, ep, admin)
		require.Empty(t, failed(s), findings(s))
		assert.Contains(t, findings(s), "(TLS 1.")
	})
	t.Run("a monitoring user where administrator is needed", func(t *testing.T) {
		user := e.Vhost + "-mon"
		require.NoError(t, e.TargetAPI.PutUser(ctx, user, "pw", []string{"monitoring"}))
		t.Cleanup(func() { _ = e.TargetAPI.DeleteUser(context.Background(), user) })
		ep := targetWith(t, e, all(user, "pw")...)
		s := preflight.Endpoint(ctx, ep, admin)
		got := findings(s)
		assert.Contains(t, got, `user "`+user+`" has tags [monitoring], but definitions import needs the administrator tag`)
		assert.Contains(t, got, "rabbitmqctl set_user_tags "+user+" administrator")
		assert.NotContains(t, got, "password", "a missing tag is not a wrong password")
		// Its AMQP logins work (in the test's vhost, the user has no
		// permission in the URL's): the nodes are still found.
		require.NoError(t, e.TargetAPI.PutPermissions(ctx, e.Vhost, user, broker.FullPermissions))
		s = preflight.Endpoint(ctx, ep, preflight.Needs{Tag: "monitoring", Why: "verify", CountMismatch: preflight.Warn, Vhosts: []string{e.Vhost}})
		require.Empty(t, failed(s), findings(s))
		assert.ElementsMatch(t, s.Running, s.URLNodes)
	})
	t.Run("a user without permissions in the vhost", func(t *testing.T) {
		user := e.Vhost + "-noperm"
		require.NoError(t, e.TargetAPI.PutUser(ctx, user, "pw", nil))
		require.NoError(t, e.TargetAPI.PutPermissions(ctx, "/", user, broker.FullPermissions))
		t.Cleanup(func() { _ = e.TargetAPI.DeleteUser(context.Background(), user) })
		ep := targetWith(t, e, all(user, "pw")...)
		ep.APIUser, ep.APIPassword = lab.TargetUser, lab.TargetPassword
		s := preflight.Endpoint(ctx, ep, admin)
		got := findings(s)
		assert.Contains(t, got, "user "+user+" on the target: no permissions in vhost "+e.Vhost)
		assert.Contains(t, got, "rabbitmqctl set_permissions -p "+e.Vhost+" "+user+" '.*' '.*' '.*'")
	})
}
