package e2e_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/internal/traffic"
	"github.com/warrenmq/warren/lab/k8s"
)

// trafficQueue is the quorum queue the example services use, in the
// application user's vhost.
const trafficQueue = "e2e-traffic"

// trafficRate is the producer's steady rate, in messages per second.
const trafficRate = 200

// serviceLoad is the example producer and consumer (examples/) running on
// this machine against the cluster, through the client Service's
// ClusterIP with the application user from the app Secret, as services
// in the cluster would through its DNS name. Each keeps a ledger of the
// message ids it saw confirmed or received.
type serviceLoad struct {
	t                     *testing.T
	scenario              string
	pubLedger, consLedger string
	producer, consumer    *brokertest.Service
}

// startLoad starts the consumer, then the producer at trafficRate.
func startLoad(t *testing.T, bin, amqpURL, scenario string) *serviceLoad {
	t.Helper()
	dir := t.TempDir()
	l := &serviceLoad{t: t, scenario: scenario,
		pubLedger: filepath.Join(dir, "producer.ledger"), consLedger: filepath.Join(dir, "consumer.ledger")}
	// The queue is the operator's (declared by the test, like warren
	// migrate's queues): the services only check that it is there.
	common := []string{"AMQP_URLS=" + amqpURL, "AMQP_QUEUE=" + trafficQueue, "AMQP_QUEUE_TYPE=passive"}
	l.consumer = brokertest.StartService(t, filepath.Join(bin, "consumer"), "consumer",
		append(common, "LEDGER="+l.consLedger, "CONNECTION_NAME=e2e-consumer")...)
	l.producer = brokertest.StartService(t, filepath.Join(bin, "producer"), "producer",
		append(common, fmt.Sprintf("RATE=%d", trafficRate), "LEDGER="+l.pubLedger, "CONNECTION_NAME=e2e-producer")...)
	return l
}

func (l *serviceLoad) confirmed() int {
	return brokertest.LedgerCount(l.t, l.pubLedger, traffic.Confirmed)
}

// flowing waits until the broker has confirmed n more messages than now:
// the producer publishes again.
func (l *serviceLoad) flowing(n int, within time.Duration) {
	l.t.Helper()
	mark := l.confirmed()
	brokertest.Eventually(l.t, within, func() error {
		if got := l.confirmed() - mark; got < n {
			return fmt.Errorf("%s: %d messages confirmed in the last stretch, waiting for %d", l.scenario, got, n)
		}
		return nil
	})
}

// finish stops the producer, waits until the consumer has received every
// confirmed message, stops the consumer, and returns the figures. Lost
// must be 0.
func (l *serviceLoad) finish() traffic.Figures {
	l.t.Helper()
	l.producer.Stop(l.t)
	brokertest.Eventually(l.t, 2*time.Minute, func() error {
		fig, err := traffic.CompareFiles([]string{l.pubLedger}, []string{l.consLedger})
		if err != nil {
			return err
		}
		if fig.Lost > 0 {
			return fmt.Errorf("%s: %d confirmed messages not consumed yet", l.scenario, fig.Lost)
		}
		return nil
	})
	l.consumer.Stop(l.t)
	fig, err := traffic.CompareFiles([]string{l.pubLedger}, []string{l.consLedger})
	require.NoError(l.t, err)
	assert.Zero(l.t, fig.Lost, "%s: lost ids: %v", l.scenario, fig.LostIDs)
	return fig
}

// appURL is the application's AMQP URL from the stack's app Secret, with
// the Service's DNS name (resolvable only inside the cluster) replaced by
// its ClusterIP.
func appURL(t *testing.T, ctx context.Context, l *k8s.Lab, ns, secret, svcIP string) string {
	t.Helper()
	out, err := l.Kubectl(ctx, nil, "-n", ns, "get", "secret", secret, "-o", "jsonpath={.data.uri}")
	require.NoError(t, err)
	raw, err := base64.StdEncoding.DecodeString(string(out))
	require.NoError(t, err)
	u, err := url.Parse(string(raw))
	require.NoError(t, err, "the app Secret's uri")
	u.Host = svcIP + ":5672"
	return u.String()
}

// setStackValue adds a plain setting to the project's stack file, as a
// user editing Pulumi.<stack>.yaml would. init appended the secrets and
// the encryption salt, so it goes right under `config:`.
func setStackValue(t *testing.T, file, key, value string) {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NotContains(t, string(b), key+":", "%s already sets %s", file, key)
	val, err := json.Marshal(value)
	require.NoError(t, err)
	re := regexp.MustCompile(`(?m)^config:\n`)
	require.Len(t, re.FindAllIndex(b, -1), 1, "%s has one config: section", file)
	b = re.ReplaceAll(b, []byte("config:\n  "+key+": "+string(val)+"\n"))
	require.NoError(t, os.WriteFile(file, b, 0o600))
}

// podOf is the pod name in a node name: rabbit@<pod>.<headless>.<ns>.
func podOf(node string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(node, "rabbit@"), ".")
	return name
}
