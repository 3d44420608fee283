package loadcheck

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
)

func validOptions(t *testing.T) Options {
	t.Helper()
	src, err := broker.ParseEndpoint("source", "amqp://guest:guest@localhost:5672/", "http://localhost:15672", broker.TLSOptions{})
	require.NoError(t, err)
	dst, err := broker.ParseEndpoint("target", "amqp://admin:admin@a:5672/,amqp://admin:admin@b:5672/", "http://a:15672", broker.TLSOptions{})
	require.NoError(t, err)
	return Options{Source: src, Target: dst, Vhost: "/", Producers: 2, Consumers: []int{1, 3, 5}, Size: 1024, Duration: 10 * time.Second}
}

func TestValidateAcceptsSaneOptions(t *testing.T) {
	o := validOptions(t)
	require.NoError(t, o.Validate())
	o.Duration, o.Count = 0, 1000
	require.NoError(t, o.Validate())
}

// Every bad setting is refused with the flag's name and value, all at
// once, and the error is ErrBadOptions (exit 2).
func TestValidateRefusesEachBadSetting(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no producer", func(o *Options) { o.Producers = 0 }, "--producers 0"},
		{"too many producers", func(o *Options) { o.Producers = MaxProducers + 1 }, "--producers 65"},
		{"empty consumer list", func(o *Options) { o.Consumers = nil }, "--consumers: no consumer count"},
		{"zero consumers", func(o *Options) { o.Consumers = []int{0, 3} }, "--consumers: 0"},
		{"duplicate count", func(o *Options) { o.Consumers = []int{3, 3} }, "3 given twice"},
		{"negative size", func(o *Options) { o.Size = -1 }, "--size -1"},
		{"huge size", func(o *Options) { o.Size = MaxSize + 1 }, "--size 134217729"},
		{"negative rate", func(o *Options) { o.Rate = -5 }, "--rate -5"},
		{"both goals", func(o *Options) { o.Count = 10 }, "give one of them"},
		{"no goal", func(o *Options) { o.Duration = 0 }, "give --duration or --count"},
		{"short duration", func(o *Options) { o.Duration = 10 * time.Millisecond }, "--duration 10ms"},
		{"negative count", func(o *Options) { o.Duration, o.Count = 0, -3 }, "--count -3"},
		{"queue type", func(o *Options) { o.QueueType = "stream" }, `--queue-type "stream"`},
		{"prefetch", func(o *Options) { o.Prefetch = 70000 }, "--prefetch 70000"},
		{"in flight", func(o *Options) { o.InFlight = -1 }, "--in-flight -1"},
		{"work", func(o *Options) { o.Work = -time.Second }, "--work -1s"},
		{"vhost", func(o *Options) { o.Vhost = "" }, "--vhost: empty"},
		{"memory", func(o *Options) { o.Producers, o.InFlight, o.Size = 10, 1000, 1<<20 }, "in flight: lower one of them"},
		{"no source", func(o *Options) { o.Source = broker.Endpoint{} }, "no source broker"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := validOptions(t)
			c.change(&o)
			err := o.Validate()
			require.ErrorIs(t, err, ErrBadOptions)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	o := validOptions(t)
	o.Producers, o.Size = 0, -1
	err := o.Validate()
	assert.Contains(t, err.Error(), "--producers 0")
	assert.Contains(t, err.Error(), "--size -1", "every problem is listed, not only the first")
}

func TestQueueTypePerSide(t *testing.T) {
	o := validOptions(t)
	assert.Equal(t, Quorum, o.queueType(Target))
	assert.Equal(t, "", o.queueType(Source), "the source keeps its vhost's default")
	o.QueueType = Classic
	assert.Equal(t, Classic, o.queueType(Target))
	assert.Equal(t, Classic, o.queueType(Source))
	o.Consumers = []int{5, 1, 3}
	assert.Equal(t, []int{1, 3, 5}, o.rounds())
	assert.Equal(t, []int{5, 1, 3}, o.Consumers, "rounds does not reorder the caller's list")
}
