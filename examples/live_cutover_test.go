package examples_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/internal/traffic"
)

// The live cutover of the README, with the example services running at
// 200 msg/s the whole time: they start on the lab's source (the old
// broker); `warren migrate --live` imports the definitions and asks for
// the consumers to move; the consumer is restarted with the cluster's URL;
// the same command then keeps shovels running while the producer still
// publishes to the source; the producer is restarted with the cluster's
// URL; every queue settles empty and the migration ends. The ledgers must
// show no confirmed message lost.
func TestLiveCutover(t *testing.T) {
	e := brokertest.New(t)
	bin := brokertest.ExampleBinaries(t)
	dir := t.TempDir()
	pubLedger, consLedger := filepath.Join(dir, "producer.ledger"), filepath.Join(dir, "consumer.ledger")
	var cluster []string
	for i := range e.Target.AMQP {
		cluster = append(cluster, e.Target.AMQP[i].String())
	}
	onSource := []string{"AMQP_URLS=" + e.Source.AMQP[0].String(), "AMQP_QUEUE=orders", "AMQP_QUEUE_TYPE=classic"}
	// On the cluster the queue is warren's (a quorum queue): the services
	// only check that it is there.
	onCluster := []string{"AMQP_URLS=" + strings.Join(cluster, ","), "AMQP_QUEUE=orders", "AMQP_QUEUE_TYPE=passive"}
	producer := func(where []string, name string) *brokertest.Service {
		return brokertest.StartService(t, filepath.Join(bin, "producer"), name,
			append(where, "RATE=200", "LEDGER="+pubLedger, "CONNECTION_NAME=example-producer")...)
	}
	consumer := func(where []string, name string) *brokertest.Service {
		return brokertest.StartService(t, filepath.Join(bin, "consumer"), name,
			append(where, "LEDGER="+consLedger, "CONNECTION_NAME=example-consumer")...)
	}
	confirmed := func() int { return brokertest.LedgerCount(t, pubLedger, traffic.Confirmed) }
	received := func() int { return brokertest.LedgerCount(t, consLedger, traffic.Received) }

	c := consumer(onSource, "consumer-on-source")
	p := producer(onSource, "producer-on-source")
	waitFor(t, "confirmed on the source", 60*time.Second, func() (int, int) { return confirmed(), 400 })

	// The cluster is new: the import creates the vhost (and RabbitMQ grants
	// the importing user its permissions).
	require.NoError(t, e.TargetAPI.DeleteVhost(context.Background(), e.Vhost))
	env := e.CLIEnv(t)
	migrate := []string{"migrate", "--live", "--vhost", e.Vhost, "--settle", "5s", "--progress", "log"}

	// 1. Definitions, then the migration waits for the consumers to move.
	first := brokertest.Run(t, env, migrate...)
	require.Equal(t, 3, first.Code, "the live cutover waits for the consumers: %s", first.Stderr)
	assert.Contains(t, first.Stdout, "next: the definitions are on the cluster. Next: point your consumers at the cluster")
	assert.Contains(t, first.Stdout, "live cutover waiting for you")

	// 2. The consumer moves to the cluster.
	c.Stop(t)
	c = consumer(onCluster, "consumer-on-cluster")

	// 3. The drain follows the producer, still on the source.
	run := brokertest.Start(t, env, migrate...)
	mark := received()
	waitFor(t, "received on the cluster while the producer is on the source", 90*time.Second, func() (int, int) { return received(), mark + 600 })

	// 4. The producer moves to the cluster.
	p.Stop(t)
	p = producer(onCluster, "producer-on-cluster")

	// 5. Every queue settles empty, 6. the migration cleans up and ends.
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		_ = run.Process.Kill()
		t.Fatal("the live migration did not finish 3 minutes after the producer moved")
	}
	res := run.Result()
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "migration complete")
	assert.Contains(t, res.Stdout, "next: every message is on the cluster")

	mark = confirmed()
	waitFor(t, "confirmed on the cluster", 60*time.Second, func() (int, int) { return confirmed(), mark + 400 })
	p.Stop(t)
	var fig traffic.Figures
	brokertest.Eventually(t, 60*time.Second, func() error {
		var err error
		if fig, err = traffic.CompareFiles([]string{pubLedger}, []string{consLedger}); err != nil {
			return err
		}
		if fig.Lost > 0 {
			return fmt.Errorf("%d confirmed messages not consumed yet", fig.Lost)
		}
		return nil
	})
	c.Stop(t)
	fig, err := traffic.CompareFiles([]string{pubLedger}, []string{consLedger})
	require.NoError(t, err)
	t.Logf("live cutover at 200 msg/s: %s", fig)
	assert.Zero(t, fig.Lost, "lost ids: %v", fig.LostIDs)
	out, err := exec.Command(filepath.Join(bin, "report"), "-producer", pubLedger, "-consumer", consLedger).CombinedOutput()
	require.NoError(t, err, "report: %s", out)
	t.Logf("report: %s", out)
}
