package appclient_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/appclient"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab"
)

// writeBinding lays out a service binding as a mounted Secret would.
func writeBinding(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for k, v := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600))
	}
	return dir
}

func TestFromBindingBuildsURLsFromHostAndCredentials(t *testing.T) {
	dir := writeBinding(t, t.TempDir(), map[string]string{
		"type": "rabbitmq\n", "provider": "warren", "host": "rabbitmq.prod.svc", "port": "5672",
		"username": "orders", "password": "p@ss:w/rd\n", "vhost": "shop",
	})
	cfg, err := appclient.FromBinding(dir)
	require.NoError(t, err)
	require.Len(t, cfg.URLs, 1)
	u, err := amqp.ParseURI(cfg.URLs[0])
	require.NoError(t, err)
	assert.Equal(t, "amqp", u.Scheme)
	assert.Equal(t, "rabbitmq.prod.svc", u.Host)
	assert.Equal(t, 5672, u.Port)
	assert.Equal(t, "orders", u.Username)
	assert.Equal(t, "p@ss:w/rd", u.Password, "special characters survive")
	assert.Equal(t, "shop", u.Vhost)
	assert.Nil(t, cfg.TLS)
}

func TestFromBindingTakesURIAndFillsMissingCredentials(t *testing.T) {
	dir := writeBinding(t, t.TempDir(), map[string]string{
		"type": "rabbitmq", "uri": "amqp://rabbitmq-server-0.rabbitmq-nodes:5672/shop, amqp://rabbitmq-server-1.rabbitmq-nodes:5672/shop",
		"username": "orders", "password": "secret",
	})
	cfg, err := appclient.FromBinding(dir)
	require.NoError(t, err)
	require.Len(t, cfg.URLs, 2)
	for _, raw := range cfg.URLs {
		u, err := amqp.ParseURI(raw)
		require.NoError(t, err)
		assert.Equal(t, "orders", u.Username)
		assert.Equal(t, "secret", u.Password)
	}
}

func TestFromBindingRefusesWhatIsNotABinding(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"no type":       {"host": "h", "username": "u", "password": "s3cret"},
		"other type":    {"type": "postgresql", "host": "h"},
		"no host":       {"type": "rabbitmq", "username": "u", "password": "s3cret"},
		"no password":   {"type": "rabbitmq", "host": "h", "username": "u"},
		"bad port":      {"type": "rabbitmq", "host": "h", "username": "u", "password": "s3cret", "port": "56x"},
		"bad uri":       {"type": "rabbitmq", "uri": "amqp://u:s3cret@h:notaport/"},
		"CA not PEM":    {"type": "rabbitmq", "host": "h", "username": "u", "password": "s3cret", "ca.crt": "nope"},
		"half a client": {"type": "rabbitmq", "host": "h", "username": "u", "password": "s3cret", "ca.crt": "x", "tls.crt": "x"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := appclient.FromBinding(writeBinding(t, t.TempDir(), files))
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "s3cret", "errors never quote a secret")
		})
	}
}

func TestLookupBindingFindsTheRabbitMQBinding(t *testing.T) {
	root := t.TempDir()
	writeBinding(t, filepath.Join(root, "db"), map[string]string{"type": "postgresql", "host": "db"})
	writeBinding(t, filepath.Join(root, "broker"), map[string]string{"type": "rabbitmq", "host": "mq", "username": "u", "password": "p"})
	t.Setenv(appclient.BindingRootEnv, root)
	cfg, err := appclient.LookupBinding("")
	require.NoError(t, err)
	assert.Contains(t, cfg.URLs[0], "@mq/")
	_, err = appclient.LookupBinding("db")
	assert.ErrorContains(t, err, "postgresql")

	writeBinding(t, filepath.Join(root, "broker2"), map[string]string{"type": "rabbitmq", "host": "mq2", "username": "u", "password": "p"})
	_, err = appclient.LookupBinding("")
	assert.ErrorContains(t, err, "name the one to use")
}

// A binding with ca.crt connects over TLS: here to the lab cluster's AMQPS
// listener, trusting the lab CA.
func TestBindingWithCAConnectsOverTLS(t *testing.T) {
	t.Parallel()
	e := brokertest.New(t)
	ca, err := os.ReadFile(e.Lab.TLS().CA)
	require.NoError(t, err)
	node := e.Lab.NodesOf(lab.Target)[1]
	dir := writeBinding(t, t.TempDir(), map[string]string{
		"type": "rabbitmq", "host": "localhost", "port": strconv.Itoa(node.AMQPSPort()),
		"username": lab.TargetUser, "password": lab.TargetPassword, "vhost": e.Vhost, "ca.crt": string(ca),
	})
	cfg, err := appclient.FromBinding(dir)
	require.NoError(t, err)
	require.NotNil(t, cfg.TLS)
	assert.Contains(t, cfg.URLs[0], "amqps://")
	cfg.Name, cfg.Logger = "tls-binding", testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := appclient.Dial(ctx, cfg)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Declare(ctx, appclient.Queue{Name: "over-tls", Type: appclient.Quorum}))
	p := c.NewPublisher(appclient.PublisherOptions{})
	require.NoError(t, p.Publish(ctx, "", "over-tls", amqp.Publishing{Body: []byte("x")}))
}

func TestFromEnvPrefersAMQPURLsThenTheBinding(t *testing.T) {
	root := t.TempDir()
	writeBinding(t, filepath.Join(root, "mq"), map[string]string{"type": "rabbitmq", "host": "from-binding", "username": "u", "password": "p"})
	t.Setenv(appclient.BindingRootEnv, root)
	t.Setenv(appclient.URLsEnv, "amqp://u:p@a:5672/,amqp://u:p@b:5672/")
	cfg, err := appclient.FromEnv()
	require.NoError(t, err)
	assert.Len(t, cfg.URLs, 2)

	t.Setenv(appclient.URLsEnv, "")
	cfg, err = appclient.FromEnv()
	require.NoError(t, err)
	assert.Contains(t, cfg.URLs[0], "from-binding")

	t.Setenv(appclient.BindingRootEnv, "")
	_, err = appclient.FromEnv()
	assert.ErrorContains(t, err, appclient.URLsEnv)
}
