package k8s_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/lab/k8s"
)

// The Kubernetes lab tests build (on a cold cache, about 15 minutes),
// start a Kubernetes node and containers on this machine, and need root.
// They run only when asked with WARREN_E2E=1 (scripts/e2e.sh does); then
// they fail, never skip, when the lab cannot come up.
func lab(t *testing.T) (*k8s.Lab, context.Context, func()) {
	t.Helper()
	if os.Getenv("WARREN_E2E") != "1" {
		t.Skip("the Kubernetes lab tests run with WARREN_E2E=1 (see scripts/e2e.sh)")
	}
	l, err := k8s.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	t.Cleanup(cancel)
	// collect saves the logs once, if the test failed. A test calls it
	// before cleanups that delete what the logs are about; registered
	// here it also runs last, after every other cleanup.
	var once sync.Once
	collect := func() {
		if !t.Failed() {
			return
		}
		once.Do(func() {
			dir := l.CollectFailure(context.Background(), t.Name())
			t.Logf("failure logs (daemon logs, pod logs, events): %s", dir)
			fmt.Fprintf(os.Stderr, "\n=== %s failed: daemon logs, pod logs and events are in %s\n", t.Name(), dir)
		})
	}
	t.Cleanup(collect)
	return l, ctx, collect
}

func up(t *testing.T, ctx context.Context, l *k8s.Lab) {
	t.Helper()
	start := time.Now()
	if err := l.Up(ctx); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab up in %s", time.Since(start).Round(100*time.Millisecond))
}

// TestDownLeavesMachineClean brings the lab up, takes it down, and checks
// that nothing of it is left: no daemon, no shim, no iptables chain of
// kube-proxy, kubelet or CNI, no bridge, no mount under the lab, and the
// sysctls as they were before the lab first started.
func TestDownLeavesMachineClean(t *testing.T) {
	l, ctx, _ := lab(t)
	up(t, ctx, l)
	if err := l.SourceUp(ctx); err != nil {
		t.Fatalf("source up: %v", err)
	}
	saved := map[string]string{}
	data, err := os.ReadFile(l.RunDir() + "/sysctls.saved.json")
	if err != nil {
		t.Fatalf("up saved no sysctls: %v", err)
	}
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	// cgroup v1 (this kind of machine) or v2.
	podCgroups := []string{"/sys/fs/cgroup/pids/kubepods", "/sys/fs/cgroup/memory/kubepods", "/sys/fs/cgroup/pids/" + k8s.CtrNamespace, "/sys/fs/cgroup/kubepods", "/sys/fs/cgroup/" + k8s.CtrNamespace}
	found := false
	for _, cg := range podCgroups {
		if _, err := os.Stat(cg); err == nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("none of the pod cgroups %v exists while the lab runs: the check below would prove nothing", podCgroups)
	}
	if !hasChain(t, "KUBE-SERVICES") {
		t.Fatal("kube-proxy's KUBE-SERVICES chain is missing while the lab runs: the check below would prove nothing")
	}

	start := time.Now()
	if err := l.Down(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	t.Logf("lab down in %s", time.Since(start).Round(100*time.Millisecond))

	for _, st := range l.Status(ctx) {
		if st.State != k8s.Down {
			t.Errorf("%s is %s after down", st.Name, st.State)
		}
	}
	for _, exe := range []string{"etcd", "containerd", "containerd-shim-runc-v2", "kube-apiserver", "kubelet", "kube-proxy", "coredns", "beam.smp"} {
		for _, p := range processesMentioning(exe, l.Dir) {
			t.Errorf("process left after down: %s", p)
		}
	}
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"nat", "filter", "mangle"} {
			out, err := exec.Command(bin, "-w", "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") {
					t.Errorf("%s -t %s rule left after down: %s", bin, table, line)
				}
			}
		}
	}
	for _, cg := range podCgroups {
		if _, err := os.Stat(cg); err == nil {
			t.Errorf("cgroup %s left after down", cg)
		}
	}
	if _, err := net.InterfaceByName(k8s.Bridge); err == nil {
		t.Errorf("bridge %s left after down", k8s.Bridge)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, " "+l.Dir+"/") {
			t.Errorf("mount left after down: %s", line)
		}
	}
	for k, v := range saved {
		got, _ := os.ReadFile("/proc/sys/" + k)
		if strings.TrimSpace(string(got)) != v {
			t.Errorf("sysctl %s = %s after down, was %s", k, strings.TrimSpace(string(got)), v)
		}
	}
	if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", k8s.SourceAMQPPort), time.Second); err == nil {
		conn.Close()
		t.Errorf("port %d still accepts connections after down", k8s.SourceAMQPPort)
	}
}

func hasChain(t *testing.T, chain string) bool {
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").Output()
	if err != nil {
		t.Fatalf("iptables: %v", err)
	}
	return strings.Contains(string(out), "-N "+chain)
}

// processesMentioning lists processes whose command line names exe and
// the lab directory (so other engineers' processes never count).
func processesMentioning(exe, dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		c := strings.ReplaceAll(string(cmdline), "\x00", " ")
		if strings.Contains(c, exe) && strings.Contains(c, dir) {
			out = append(out, e.Name()+": "+c)
		}
	}
	return out
}

type manifestData struct{ Namespace, Image, Cookie string }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type rabbitNode struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
}

// TestRabbitMQClusterOnLab is the lab's acceptance test: a plain
// 3-replica StatefulSet of the lab's RabbitMQ image forms ONE 3-node
// cluster through rabbit_peer_discovery_k8s (which needs the API through
// the `kubernetes` Service, so kube-proxy, and pod DNS names, so CoreDNS),
// on volumes of the default StorageClass; the pods accept AMQP from this
// machine on their IPs and through a ClusterIP Service; the source
// container accepts AMQP on 5672; and a shovel in the pods drains a
// backlog from the source container, as `warren migrate` will.
func TestRabbitMQClusterOnLab(t *testing.T) {
	l, ctx, collect := lab(t)
	up(t, ctx, l)

	ns := "warren-lab-test-" + randomHex(3)
	tmpl := template.Must(template.ParseFiles("testdata/rabbitmq.yaml"))
	var manifest bytes.Buffer
	if err := tmpl.Execute(&manifest, manifestData{Namespace: ns, Image: k8s.RabbitMQImage, Cookie: strings.ToUpper(randomHex(16))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		collect()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if _, err := l.Kubectl(ctx, nil, "delete", "namespace", ns, "--wait=true"); err != nil {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
		// Give the released volumes back to the pool for what runs next.
		brokerEventually(t, 2*time.Minute, func() error { return noVolumeReleased(ctx, l) })
	})
	start := time.Now()
	if err := l.Apply(ctx, manifest.String()); err != nil {
		t.Fatalf("apply the RabbitMQ StatefulSet: %v", err)
	}
	if _, err := l.Kubectl(ctx, nil, "-n", ns, "rollout", "status", "statefulset/rabbit", "--timeout=6m"); err != nil {
		t.Fatalf("StatefulSet not ready: %v", err)
	}
	t.Logf("3 RabbitMQ pods ready in %s", time.Since(start).Round(100*time.Millisecond))

	pods := rabbitPods(t, ctx, l, ns)
	clusterStart := time.Now()
	urls := oneCluster(t, ctx, ns, pods)
	t.Logf("one 3-node cluster seen by every pod %s after the pods were ready", time.Since(clusterStart).Round(100*time.Millisecond))

	// AMQP from this machine to each pod: a quorum queue declared on the
	// first node, a message published on the second, read on the third.
	cluster, err := broker.ParseEndpoint("lab-cluster", strings.Join(urls, ","), fmt.Sprintf("http://%s:15672", pods[0].Status.PodIP), broker.TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	chOn := func(i int) *amqp.Channel {
		conn, err := cluster.DialNode(ctx, i, "/")
		if err != nil {
			t.Fatalf("AMQP to pod %s: %v", pods[i].Metadata.Name, err)
		}
		t.Cleanup(func() { conn.Close() })
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	if _, err := chOn(0).QueueDeclare("lab-test", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatalf("declare a quorum queue: %v", err)
	}
	body := "through the cluster " + randomHex(4)
	if err := chOn(1).PublishWithContext(ctx, "", "lab-test", true, false, amqp.Publishing{Body: []byte(body), DeliveryMode: amqp.Persistent}); err != nil {
		t.Fatal(err)
	}
	ch2 := chOn(2)
	brokerEventually(t, 30*time.Second, func() error {
		m, ok, err := ch2.Get("lab-test", true)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("queue lab-test is empty on %s", pods[2].Metadata.Name)
		case string(m.Body) != body:
			return fmt.Errorf("got %q, want %q", m.Body, body)
		}
		return nil
	})

	// Through the ClusterIP Service: kube-proxy's rules serve this
	// machine too.
	svcIP, err := l.Kubectl(ctx, nil, "-n", ns, "get", "service", "rabbit", "-o", "jsonpath={.spec.clusterIP}")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := broker.ParseEndpoint("service", fmt.Sprintf("amqp://admin:admin@%s:5672/", svcIP), fmt.Sprintf("http://%s:15672", svcIP), broker.TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := svc.Dial(ctx, "/")
	if err != nil {
		t.Fatalf("AMQP through Service %s: %v", svcIP, err)
	}
	conn.Close()
	sapi, err := svc.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	var overview struct {
		ClusterName string `json:"cluster_name"`
	}
	if err := sapi.Get(ctx, "overview", &overview); err != nil {
		t.Fatalf("HTTP API through Service %s: %v", svcIP, err)
	}
	if overview.ClusterName != "warren-lab-test" {
		t.Errorf("Service %s answers for cluster %q, want warren-lab-test", svcIP, overview.ClusterName)
	}

	// The source container, like the team's Docker broker.
	if err := l.SourceUp(ctx); err != nil {
		t.Fatalf("source up: %v", err)
	}
	src := l.SourceEndpoint()
	sconn, err := src.Dial(ctx, "/")
	if err != nil {
		t.Fatalf("AMQP to the source container on %d: %v", k8s.SourceAMQPPort, err)
	}
	defer sconn.Close()
	sch, err := sconn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	srcQueue := "lab-backlog-" + randomHex(3)
	if _, err := sch.QueueDeclare(srcQueue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = sch.QueueDelete(srcQueue, false, false, false) })
	const backlog = 200
	for i := 0; i < backlog; i++ {
		if err := sch.PublishWithContext(ctx, "", srcQueue, true, false, amqp.Publishing{Body: []byte(fmt.Sprint(i)), DeliveryMode: amqp.Persistent}); err != nil {
			t.Fatal(err)
		}
	}

	// A dynamic shovel running in the pods drains the source through the
	// node address, the way `warren migrate` will reach the source.
	capi, err := cluster.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	dstQueue := "lab-drained"
	shovel := map[string]any{"value": map[string]any{
		"src-protocol": "amqp091", "src-uri": l.Env()["WARREN_K8S_SOURCE_POD_URL"], "src-queue": srcQueue,
		"dest-protocol": "amqp091", "dest-uri": "amqp://", "dest-queue": dstQueue,
		"ack-mode": "on-confirm", "src-delete-after": "queue-length",
	}}
	if err := capi.Do(ctx, "PUT", "parameters/shovel/"+broker.PathEscape("/")+"/lab-drain", shovel, nil); err != nil {
		t.Fatalf("declare a shovel from the source container: %v", err)
	}
	brokerEventually(t, 2*time.Minute, func() error {
		var q struct {
			Messages int `json:"messages"`
		}
		if err := capi.Get(ctx, "queues/"+broker.PathEscape("/")+"/"+dstQueue, &q); err != nil {
			return err
		}
		if q.Messages != backlog {
			return fmt.Errorf("%s holds %d messages, want %d", dstQueue, q.Messages, backlog)
		}
		return nil
	})
	sq, err := sch.QueueDeclarePassive(srcQueue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sq.Messages != 0 {
		t.Errorf("source queue still holds %d messages after the drain", sq.Messages)
	}

	// A deleted pod comes back on its volume, under its name, with a new
	// address, and rejoins: the drained messages are all still there.
	healStart := time.Now()
	if _, err := l.Kubectl(ctx, nil, "-n", ns, "delete", "pod", "rabbit-1", "--wait=true"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Kubectl(ctx, nil, "-n", ns, "rollout", "status", "statefulset/rabbit", "--timeout=5m"); err != nil {
		t.Fatalf("StatefulSet not ready after a pod was deleted: %v", err)
	}
	pods = rabbitPods(t, ctx, l, ns)
	oneCluster(t, ctx, ns, pods)
	t.Logf("cluster healed %s after rabbit-1 was deleted", time.Since(healStart).Round(100*time.Millisecond))
	healed, err := broker.ParseEndpoint("healed", fmt.Sprintf("amqp://admin:admin@%s:5672/", pods[1].Status.PodIP), fmt.Sprintf("http://%s:15672", pods[1].Status.PodIP), broker.TLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hapi, err := healed.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	brokerEventually(t, time.Minute, func() error {
		var q struct {
			Messages int `json:"messages"`
		}
		if err := hapi.Get(ctx, "queues/"+broker.PathEscape("/")+"/"+dstQueue, &q); err != nil {
			return err
		}
		if q.Messages != backlog {
			return fmt.Errorf("after the heal %s holds %d messages, want %d", dstQueue, q.Messages, backlog)
		}
		return nil
	})
}

type rabbitPod struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Status struct {
		PodIP string `json:"podIP"`
	} `json:"status"`
}

// rabbitPods returns the StatefulSet's 3 pods in name order.
func rabbitPods(t *testing.T, ctx context.Context, l *k8s.Lab, ns string) []rabbitPod {
	t.Helper()
	out, err := l.Kubectl(ctx, nil, "-n", ns, "get", "pods", "-l", "app=rabbit", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []rabbitPod }
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 3 {
		t.Fatalf("want 3 pods, got %d", len(list.Items))
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Metadata.Name < list.Items[j].Metadata.Name })
	return list.Items
}

// oneCluster waits until every pod sees the same three running members
// (one cluster, not three single nodes or a pair and a loner) and
// returns the pods' AMQP URLs.
func oneCluster(t *testing.T, ctx context.Context, ns string, pods []rabbitPod) []string {
	t.Helper()
	var want, urls []string
	for _, p := range pods {
		want = append(want, fmt.Sprintf("rabbit@%s.rabbit-nodes.%s.svc.%s", p.Metadata.Name, ns, k8s.ClusterDomain))
		urls = append(urls, fmt.Sprintf("amqp://admin:admin@%s:5672/", p.Status.PodIP))
	}
	sort.Strings(want)
	for _, p := range pods {
		ep, err := broker.ParseEndpoint(p.Metadata.Name, fmt.Sprintf("amqp://admin:admin@%s:5672/", p.Status.PodIP), fmt.Sprintf("http://%s:15672", p.Status.PodIP), broker.TLSOptions{})
		if err != nil {
			t.Fatal(err)
		}
		api, err := ep.NewAPI()
		if err != nil {
			t.Fatal(err)
		}
		brokerEventually(t, 3*time.Minute, func() error {
			var nodes []rabbitNode
			if err := api.Get(ctx, "nodes", &nodes); err != nil {
				return err
			}
			var running []string
			for _, n := range nodes {
				if n.Running {
					running = append(running, n.Name)
				}
			}
			sort.Strings(running)
			if !slices.Equal(running, want) {
				return fmt.Errorf("%s sees running nodes %v, want %v", p.Metadata.Name, running, want)
			}
			return nil
		})
	}
	return urls
}

// brokerEventually retries f until it succeeds or d passes.
func brokerEventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", d, err)
		}
		time.Sleep(time.Second)
	}
}

// noVolumeReleased recycles released pool volumes and checks that none is
// left Released or Failed, so the next deployment finds the pool whole.
func noVolumeReleased(ctx context.Context, l *k8s.Lab) error {
	if err := l.RecycleVolumes(ctx); err != nil {
		return err
	}
	out, err := l.Kubectl(ctx, nil, "get", "pv", "-l", "warren.dev/lab-volume=true", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.phase}{"\n"}{end}`)
	if err != nil {
		return err
	}
	var bad []string
	all := strings.Fields(string(out))
	for _, kv := range all {
		if strings.HasSuffix(kv, "=Released") || strings.HasSuffix(kv, "=Failed") {
			bad = append(bad, kv)
		}
	}
	if len(bad) > 0 || len(all) != k8s.VolumePool {
		return fmt.Errorf("lab volumes not all back in the pool: %v", all)
	}
	return nil
}
