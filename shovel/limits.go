package shovel

import (
	"fmt"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
)

// MinTTL is the shortest message or queue TTL a destination queue may have:
// a message that expires on the target before the drain and its
// verification end is lost to the migration.
const MinTTL = time.Hour

// limit is one effective limit of a queue: the lower of its argument and
// its policy's (RabbitMQ applies the lower of the two).
type limit struct {
	value int64
	from  string // "argument x-max-length", "policy max-length"
}

func effective(q *broker.QueueInfo, arg, key string) (limit, bool) {
	best, ok := limit{}, false
	for _, c := range []struct {
		v    any
		from string
	}{{q.Arguments[arg], "argument " + arg}, {q.EffectivePolicyDefinition[key], "policy " + key}} {
		n, isNum := c.v.(float64)
		if !isNum {
			continue
		}
		if !ok || int64(n) < best.value {
			best, ok = limit{int64(n), c.from}, true
		}
	}
	return best, ok
}

// checkLimits refuses a destination queue whose own limits would lose
// messages of the drain: incoming messages (incomingBytes of bodies) on
// top of what it holds. Whatever the overflow mode, a queue over its length
// limit loses messages to the drain: drop-head discards the oldest,
// reject-publish makes the target nack, and the shovel then requeues and
// redelivers for ever (reject-publish-dlx dead-letters a copy each time).
// A TTL shorter than MinTTL expires messages before the migration is done.
// delivery-limit counts consumers' redeliveries: no consumer reads a
// destination during a drain, so it cannot drop anything.
func checkLimits(q *broker.QueueInfo, incoming int, incomingBytes int64) error {
	var problems []string
	there, _ := q.Count()
	if l, ok := effective(q, "x-max-length", "max-length"); ok && int64(there+incoming) > l.value {
		problems = append(problems, fmt.Sprintf("it holds at most %d messages (%s) and would then hold %d: %d would be %s",
			l.value, l.from, there+incoming, int64(there+incoming)-l.value, overflowFate(q)))
	}
	if l, ok := effective(q, "x-max-length-bytes", "max-length-bytes"); ok && q.MessageBytes+incomingBytes > l.value {
		problems = append(problems, fmt.Sprintf("it holds at most %s (%s) and would then hold %s: the excess would be %s",
			bytes(l.value), l.from, bytes(q.MessageBytes+incomingBytes), overflowFate(q)))
	}
	if l, ok := effective(q, "x-message-ttl", "message-ttl"); ok && time.Duration(l.value)*time.Millisecond < MinTTL {
		problems = append(problems, fmt.Sprintf("its messages expire after %s (%s), before the drain and its verification end",
			time.Duration(l.value)*time.Millisecond, l.from))
	}
	if l, ok := effective(q, "x-expires", "expires"); ok && time.Duration(l.value)*time.Millisecond < MinTTL {
		problems = append(problems, fmt.Sprintf("the queue itself is deleted after %s unused (%s), with the messages in it",
			time.Duration(l.value)*time.Millisecond, l.from))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: target queue %q in vhost %q: %s. Nothing was moved: raise or remove the limit on the target for the migration "+
		"(a policy with a higher priority, or `rabbitmqctl clear_policy`), or empty the queue there, then run the same command again",
		ErrTargetLimit, q.Name, q.Vhost, strings.Join(problems, "; "))
}

func overflowFate(q *broker.QueueInfo) string {
	overflow, _ := q.Arguments["x-overflow"].(string)
	if overflow == "" {
		overflow, _ = q.EffectivePolicyDefinition["overflow"].(string)
	}
	switch overflow {
	case "reject-publish":
		return "refused by the target (overflow reject-publish), and redelivered by the shovel for ever"
	case "reject-publish-dlx":
		return "refused by the target and dead-lettered there (overflow reject-publish-dlx), again at every redelivery"
	}
	return "dropped from the head of the queue (overflow drop-head)"
}

func bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
