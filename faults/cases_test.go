package faults

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/shovel"
)

// A small prefetch keeps the first run slow enough for a fault to land
// mid-drain; WARREN_FAULTS_PREFETCH sets another, to measure what a
// prefetch costs in duplicates.
var slow = "--prefetch=" + cmp.Or(os.Getenv("WARREN_FAULTS_PREFETCH"), "50")

func TestKillWarrenMidDrain(t *testing.T) {
	fault(t, true)
	w := setup(t, 4, 5000, true)
	first := w.midDrain(w.env, w.drain(slow), 2000, send(syscall.SIGKILL))
	w.conclude(w.env, w.drain(), first, 0)
}

func TestSIGINTMidDrain(t *testing.T) {
	fault(t, false)
	w := setup(t, 4, 5000, true)
	first := w.midDrain(w.env, w.drain(slow), 2000, send(syscall.SIGINT))
	assert.Equal(t, 130, first.Code, "Ctrl-C is an interruption")
	assert.Contains(t, first.Stderr, "Nothing is lost")
	w.conclude(w.env, w.drain(), first, 0)
}

// shovelNode returns a target node that runs one of the case's shovels.
func (w *world) shovelNode() string {
	var node string
	brokertest.Eventually(w.t, time.Minute, func() error {
		list, err := shovel.List(context.Background(), w.e.TargetAPI, shovel.OnTarget)
		if err != nil {
			return err
		}
		for _, s := range list {
			if s.Vhost == w.e.Vhost && s.Node != "" {
				node = s.Node
				return nil
			}
		}
		return errors.New("no shovel of the case reported yet")
	})
	return node
}

// labNode maps an Erlang node name to its lab id (target-2, ...).
func (w *world) labNode(erlang string) string {
	for _, n := range w.e.Lab.Nodes {
		if n.Erlang == erlang {
			return n.ID
		}
	}
	w.t.Fatalf("no lab node named %s", erlang)
	return ""
}

func TestKillTargetNodeRunningShovels(t *testing.T) {
	fault(t, false)
	w := setup(t, 3, 20000, true)
	first := w.midDrain(w.env, w.drain(slow), 3000, func(*brokertest.Process) {
		victim := w.labNode(w.shovelNode())
		t.Logf("killing %s, which runs a shovel", victim)
		require.NoError(t, w.e.Lab.KillNode(context.Background(), victim))
	})
	w.conclude(w.env, w.drain(), first, 0)
}

func TestKillTheAPINode(t *testing.T) {
	fault(t, false)
	w := setup(t, 3, 20000, true)
	// WARREN_TARGET_API is target-1's; the node APIs let warren go on
	// through the others.
	first := w.midDrain(w.env, w.drain(slow), 3000, func(*brokertest.Process) {
		require.NoError(t, w.e.Lab.KillNode(context.Background(), "target-1"))
	})
	w.conclude(w.env, w.drain(), first, 0)
}

func TestSourceRestartedMidDrain(t *testing.T) {
	fault(t, false)
	w := setup(t, 3, 20000, true)
	first := w.midDrain(w.env, w.drain(slow), 3000, func(*brokertest.Process) {
		require.NoError(t, w.e.Lab.StopNode(context.Background(), "source"))
		require.NoError(t, w.e.Lab.Up(context.Background()))
	})
	w.conclude(w.env, w.drain(), first, 0)
}

// alarm raises a resource alarm on target-2 for d while a drain runs, and
// checks that the drain paused: what arrived during the alarm is at most
// what the shovels had in flight when it began.
func alarm(t *testing.T, raise, clear []string) {
	w := setup(t, 3, 20000, true)
	ctx := context.Background()
	first := w.midDrain(w.env, w.drain(slow), 3000, func(*brokertest.Process) {
		w.e.Ctl(t, "target-2", raise...)
		cleared := false
		defer func() {
			if !cleared {
				_, _ = w.e.Lab.Ctl(ctx, "target-2", clear...)
			}
		}()
		// Warren sees the alarm within a poll and removes the shovels:
		// what they published until then is allowed, nothing after.
		brokertest.Eventually(t, 30*time.Second, func() error {
			st, err := w.e.TargetAPI.ListShovelStatus(ctx, w.e.Vhost)
			if err != nil || len(st) > 0 {
				return fmt.Errorf("%d shovel(s) still listed in a cluster in alarm (%v)", len(st), err)
			}
			return nil
		})
		during := w.arrived()
		time.Sleep(20 * time.Second)
		after := w.arrived()
		w.e.Ctl(t, "target-2", clear...)
		cleared = true
		assert.LessOrEqual(t, after-during, 3*50, "messages written into a cluster in alarm after the drain paused")
	})
	assert.Contains(t, first.Stderr, "drain paused")
	w.conclude(w.env, w.drain(), first, 0)
}

func TestMemoryAlarmOnTarget(t *testing.T) {
	fault(t, false)
	alarm(t, []string{"set_vm_memory_high_watermark", "absolute", "1"}, []string{"set_vm_memory_high_watermark", "absolute", "1GB"})
}

func TestDiskAlarmOnTarget(t *testing.T) {
	fault(t, false)
	alarm(t, []string{"set_disk_free_limit", "100000GB"}, []string{"set_disk_free_limit", "200MB"})
}

// The target's HTTP API stalls (every byte swallowed) for 20 s, then resets
// every connection for 10 s: warren retries through it, with no node API
// to fail over to.
func TestTargetAPIStallsAndResets(t *testing.T) {
	fault(t, true)
	w := setup(t, 3, 10000, true)
	proxy := brokertest.NewProxy(t, strings.TrimPrefix(w.e.Target.API, "http://"))
	env := w.with("WARREN_TARGET_API=http://"+proxy.Addr, "WARREN_NODE_API=")
	first := w.midDrain(env, w.drain(slow), 2000, func(*brokertest.Process) {
		proxy.Stall(t)
		time.Sleep(20 * time.Second)
		proxy.Heal(t)
		proxy.Reset(t)
		time.Sleep(10 * time.Second)
		proxy.Heal(t)
	})
	w.conclude(env, w.drain(), first, 0)
}

// The shovels reach the source through a proxy, which drops every
// connection and refuses new ones for 10 s.
func TestNetworkToSourceCut(t *testing.T) {
	fault(t, false)
	w := setup(t, 3, 20000, true)
	proxy := brokertest.NewProxy(t, fmt.Sprintf("%s:%d", w.e.Source.AMQP[0].Host, w.e.Source.AMQP[0].Port))
	via := proxy.URL(t, w.e.Source.URLWithVhost(0, ""))
	first := w.midDrain(w.env, w.drain(slow, "--shovel-source-url", via), 3000, func(*brokertest.Process) {
		proxy.Cut(t)
		time.Sleep(10 * time.Second)
		proxy.Heal(t)
	})
	w.conclude(w.env, w.drain("--shovel-source-url", via), first, 0)
}

func TestSixteenQueuesInParallel(t *testing.T) {
	fault(t, true)
	w := setup(t, 16, 10000, true)
	first := brokertest.Run(t, w.env, w.drain("--parallel", "16")...)
	require.Equal(t, 0, first.Code, first.Stderr)
	w.conclude(w.env, w.drain("--parallel", "16"), first, 0)
}

func TestMigrateTwice(t *testing.T) {
	fault(t, false)
	w := setup(t, 4, 5000, false)
	// A new cluster: the import creates the vhost.
	require.NoError(t, w.e.TargetAPI.DeleteVhost(context.Background(), w.e.Vhost))
	args := []string{"migrate", "--vhost", w.e.Vhost, "--progress", "log"}
	first := brokertest.Run(t, w.env, args...)
	require.Equal(t, 0, first.Code, first.Stderr)
	w.conclude(w.env, args, first, 0)
}

// ghost leaves a stale shovel status: the parameter of one of the case's
// shovels is deleted through another node's API than the one running it,
// which RabbitMQ 3.10 answers by stopping the shovel but keeping its status
// on its node (as after a peer's kill -9).
func (w *world) ghost() {
	t := w.t
	ctx := context.Background()
	list, err := shovel.List(ctx, w.e.TargetAPI, shovel.OnTarget)
	require.NoError(t, err)
	for _, s := range list {
		if s.Vhost != w.e.Vhost || s.Node == "" {
			continue
		}
		for _, n := range w.e.Lab.NodesOf("target") {
			if n.Erlang == s.Node {
				continue
			}
			other, err := w.e.Lab.Endpoint(n).NewAPI()
			require.NoError(t, err)
			require.NoError(t, other.DeleteShovel(ctx, s.Vhost, s.Name))
			brokertest.Eventually(t, 10*time.Second, func() error {
				st, err := w.e.TargetAPI.ListShovelStatus(ctx, s.Vhost)
				if err != nil {
					return err
				}
				for _, x := range st {
					if x.Name == s.Name {
						return nil
					}
				}
				return errors.New("no stale status left")
			})
			t.Logf("left a stale status of %s on %s", s.Name, s.Node)
			return
		}
	}
	t.Fatal("no running shovel of the case to leave a ghost of")
}

func TestAbortWithGhosts(t *testing.T) {
	fault(t, false)
	w := setup(t, 3, 10000, true)
	first := w.midDrain(w.env, w.drain(slow), 2000, send(syscall.SIGINT))
	w.ghost()
	abort := brokertest.Run(t, w.env, w.drain("--abort")...)
	require.Equal(t, 0, abort.Code, abort.Stderr)
	assert.Contains(t, abort.Stdout, "stale status")
	list, err := shovel.List(context.Background(), w.e.TargetAPI, shovel.OnTarget)
	require.NoError(t, err)
	for _, s := range list {
		assert.NotEqual(t, w.e.Vhost, s.Vhost, "shovel %s left after --abort", s.Name)
	}
	w.conclude(w.env, w.drain(), first, 0)
}

func TestSIGINTAbortRerun(t *testing.T) {
	fault(t, false)
	w := setup(t, 3, 10000, true)
	first := w.midDrain(w.env, w.drain(slow), 2000, send(syscall.SIGINT))
	abort := brokertest.Run(t, w.env, w.drain("--abort")...)
	require.Equal(t, 0, abort.Code, abort.Stderr)
	w.conclude(w.env, w.drain(), first, 0)
}

func TestStaleShovelStatus(t *testing.T) {
	fault(t, false)
	w := setup(t, 3, 10000, true)
	first := w.midDrain(w.env, w.drain(slow), 2000, send(syscall.SIGINT))
	w.ghost()
	w.conclude(w.env, w.drain(), first, 0)
}

func TestTargetMaxLengthPolicy(t *testing.T) {
	fault(t, false)
	w := setup(t, 2, 1000, true)
	ctx := context.Background()
	require.NoError(t, w.e.TargetAPI.PutPolicy(ctx, broker.Policy{Vhost: w.e.Vhost, Name: "cap", Pattern: ".*", ApplyTo: "queues",
		Definition: map[string]any{"max-length": 100}}))
	brokertest.Eventually(t, 10*time.Second, func() error {
		q, err := w.e.TargetAPI.GetQueue(ctx, w.e.Vhost, "q00")
		if err != nil || q.EffectivePolicyDefinition["max-length"] == nil {
			return fmt.Errorf("policy not applied yet (%v)", err)
		}
		return nil
	})
	first := brokertest.Run(t, w.env, w.drain()...)
	assert.Equal(t, 4, first.Code, "refused as unsafe: %s", first.Stderr)
	assert.Contains(t, first.Stderr, "holds at most 100 messages (policy max-length)")
	assert.Zero(t, w.arrived(), "nothing may move")
	require.NoError(t, w.e.TargetAPI.DeletePolicy(ctx, w.e.Vhost, "cap"))
	brokertest.Eventually(t, 10*time.Second, func() error {
		q, err := w.e.TargetAPI.GetQueue(ctx, w.e.Vhost, "q00")
		if err != nil || q.EffectivePolicyDefinition["max-length"] != nil {
			return fmt.Errorf("policy still applied (%v)", err)
		}
		return nil
	})
	w.conclude(w.env, w.drain(), first, 0)
}

func TestSourceIsTheTarget(t *testing.T) {
	fault(t, false)
	w := setup(t, 2, 100, true)
	env := w.with("WARREN_TARGET_URL="+w.e.Source.URLWithVhost(0, ""), "WARREN_TARGET_API="+w.e.Source.API, "WARREN_NODE_API=")
	first := brokertest.Run(t, env, w.drain()...)
	assert.Equal(t, 2, first.Code, first.Stderr)
	assert.Contains(t, first.Stderr, "the source and the target are the same broker")
	assert.Equal(t, 100, w.depth(false, "q00"), "nothing may move")
	w.conclude(env, w.drain(), first, 2) // refused again, still nothing moved
}
