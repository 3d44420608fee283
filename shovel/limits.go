package shovel

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
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

// withPolicies sets the queue's effective policy definition from the
// vhost's policies as they are now. The definition the HTTP API reports
// with the queue lags: a classic queue reports it only with its next
// statistics, which an idle queue may not emit for a long time, and a
// changed policy shows late, so a limit set or raised by policy would be
// misjudged. RabbitMQ applies the highest-priority policy whose pattern
// matches the queue's name, and beside it the highest-priority operator
// policy; for the limits checked here the lower value of the two applies.
// When a pattern is one Go's regexp cannot read (RabbitMQ takes PCRE), the
// reported definition is kept beside the computed one, the lower limits
// winning.
func withPolicies(ctx context.Context, api *broker.API, q *broker.QueueInfo) error {
	policies, err := api.ListPolicies(ctx, q.Vhost)
	if err != nil {
		return err
	}
	operator, err := api.ListOperatorPolicies(ctx, q.Vhost)
	if err != nil && !broker.IsNotFound(err) {
		return err
	}
	merged := map[string]any{}
	unsure := false
	for _, set := range [][]broker.Policy{policies, operator} {
		p, ok, readable := applying(set, q.Name)
		unsure = unsure || !readable
		if ok {
			lower(merged, p.Definition)
		}
	}
	if unsure {
		lower(merged, q.EffectivePolicyDefinition)
	}
	q.EffectivePolicyDefinition = merged
	return nil
}

// lower merges def into into, keeping the lower of two numbers.
func lower(into, def map[string]any) {
	for k, v := range def {
		old, isNum := into[k].(float64)
		if n, ok := v.(float64); ok && isNum && old < n {
			continue
		}
		into[k] = v
	}
}

// applying returns the policy of set that applies to a queue named name;
// readable is false when a pattern could not be read.
func applying(set []broker.Policy, name string) (best broker.Policy, found, readable bool) {
	readable = true
	for _, p := range set {
		if p.ApplyTo != "" && p.ApplyTo != "queues" && p.ApplyTo != "all" {
			continue
		}
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			slog.Warn("cannot tell whether a policy applies to a queue; taking what the HTTP API reports", "policy", p.Name, "pattern", p.Pattern, "queue", name, "err", err)
			readable = false
			continue
		}
		if re.MatchString(name) && (!found || p.Priority > best.Priority) {
			best, found = p, true
		}
	}
	return best, found, readable
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
