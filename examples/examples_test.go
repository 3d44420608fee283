package examples_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/internal/traffic"
)

// waitFor waits until cond returns got >= want.
func waitFor(t *testing.T, what string, d time.Duration, cond func() (int, int)) {
	t.Helper()
	brokertest.Eventually(t, d, func() error {
		if got, want := cond(); got < want {
			return fmt.Errorf("%s: %d, waiting for %d", what, got, want)
		}
		return nil
	})
}

// The producer and consumer examples run as real processes against the
// lab cluster at 200 msg/s. Each is restarted once with another node's URL,
// as a service is when it switches brokers; their ledgers then show that
// no confirmed message was lost.
func TestExamplesSurviveRestartsOnAnotherNode(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	bin := brokertest.ExampleBinaries(t)
	dir := t.TempDir()
	pubLedger, consLedger := filepath.Join(dir, "producer.ledger"), filepath.Join(dir, "consumer.ledger")
	node := func(i int) string { return "AMQP_URLS=" + e.Target.AMQP[i].String() }
	common := []string{"AMQP_QUEUE=demo", "AMQP_QUEUE_TYPE=quorum"}
	producer := func(i int) *brokertest.Service {
		return brokertest.StartService(t, filepath.Join(bin, "producer"), fmt.Sprintf("producer-on-node-%d", i+1),
			append(common, node(i), "RATE=200", "LEDGER="+pubLedger, "CONNECTION_NAME=example-producer")...)
	}
	consumer := func(i int) *brokertest.Service {
		return brokertest.StartService(t, filepath.Join(bin, "consumer"), fmt.Sprintf("consumer-on-node-%d", i+1),
			append(common, node(i), "LEDGER="+consLedger, "CONNECTION_NAME=example-consumer")...)
	}
	confirmed := func() int { return brokertest.LedgerCount(t, pubLedger, traffic.Confirmed) }
	received := func() int { return brokertest.LedgerCount(t, consLedger, traffic.Received) }

	c := consumer(0)
	p := producer(0)
	waitFor(t, "confirmed", 60*time.Second, func() (int, int) { return confirmed(), 600 })

	c.Stop(t)
	c = consumer(1)
	mark := received()
	waitFor(t, "received after the consumer moved", 60*time.Second, func() (int, int) { return received(), mark + 400 })

	p.Stop(t)
	p = producer(2)
	mark = confirmed()
	waitFor(t, "confirmed after the producer moved", 60*time.Second, func() (int, int) { return confirmed(), mark + 400 })
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
	t.Logf("examples restarted on other nodes: %s", fig)
	assert.Zero(t, fig.Lost, "lost ids: %v", fig.LostIDs)
	assert.GreaterOrEqual(t, fig.Published, 1400)
	assert.Equal(t, 2, brokertest.LedgerCount(t, pubLedger, traffic.Start), "the restarted producer appended to its ledger")
	assert.Equal(t, 2, brokertest.LedgerCount(t, consLedger, traffic.Start), "the restarted consumer appended to its ledger")

	// The report command reads the same ledgers.
	out, err := exec.Command(filepath.Join(bin, "report"), "-producer", pubLedger, "-consumer", consLedger).CombinedOutput()
	require.NoError(t, err, "report: %s", out)
	assert.Contains(t, string(out), "lost 0,")
}
