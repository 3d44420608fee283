package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/shovel"
)

// PreflightReport is what the preflight phase learned about both brokers.
type PreflightReport struct {
	Source   *definitions.Broker   `json:"source"`
	Target   *definitions.Broker   `json:"target"`
	Nodes    []NodeHeadroom        `json:"target_nodes"`
	Findings []definitions.Finding `json:"findings"`
	// BacklogMessages and BacklogBytes are what the source holds in the
	// queues in scope: messages as counted now, bytes from the HTTP API's
	// (see backlog). EstimatedMessages are messages the API had not sized
	// yet, sized with the average of those it had; UnsizedMessages are
	// messages it had sized none of, which BacklogBytes leaves out.
	BacklogMessages   int   `json:"backlog_messages"`
	BacklogBytes      int64 `json:"backlog_bytes"`
	EstimatedMessages int   `json:"estimated_messages,omitempty"`
	UnsizedMessages   int   `json:"unsized_messages,omitempty"`
}

// NodeHeadroom is one target node's room for the backlog.
type NodeHeadroom struct {
	Name          string `json:"name"`
	Running       bool   `json:"running"`
	DiskFree      int64  `json:"disk_free"`
	DiskFreeLimit int64  `json:"disk_free_limit"`
	MemUsed       int64  `json:"mem_used"`
	MemLimit      int64  `json:"mem_limit"`
	MemAlarm      bool   `json:"mem_alarm"`
	DiskAlarm     bool   `json:"disk_free_alarm"`
}

func headroom(n broker.NodeInfo) NodeHeadroom {
	return NodeHeadroom{Name: n.Name, Running: n.Running, DiskFree: n.DiskFree, DiskFreeLimit: n.DiskFreeLimit,
		MemUsed: n.MemUsed, MemLimit: n.MemLimit, MemAlarm: n.MemAlarm, DiskAlarm: n.DiskAlarm}
}

// QueueBacklog is one source queue's backlog.
type QueueBacklog struct {
	Vhost    string `json:"vhost"`
	Queue    string `json:"queue"`
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes"`
	// Size says where Bytes comes from (see backlog).
	Size BacklogSize `json:"size"`
}

// BacklogSize says how a queue's backlog was sized.
type BacklogSize string

// How backlog sizes a queue.
const (
	// SizeCounted: the HTTP API's message_bytes, for as many messages as
	// there are now.
	SizeCounted BacklogSize = "counted"
	// SizeScaled: the API counted another number of messages; its bytes
	// scaled to the current count.
	SizeScaled BacklogSize = "scaled"
	// SizeEstimated: the API had not sized the queue yet; the average
	// message size of the queues it had sized, times the count.
	SizeEstimated BacklogSize = "estimated"
	// SizeUnknown: the API had sized no queue at all; Bytes is 0.
	SizeUnknown BacklogSize = "unknown"
)

// ErrPreflight marks a broker unfit for the migration.
var ErrPreflight = errors.New("the brokers are not ready for the migration")

// diskFactor is the disk headroom asked of each target node per byte of
// backlog: every quorum queue member keeps a full copy, written to the WAL
// and again to segment files before the WAL is truncated.
const diskFactor = 2

func (r *runner) preflight(ctx context.Context) (string, error) {
	rep := &PreflightReport{}
	r.sum.Preflight = rep
	var err error
	if rep.Source, err = definitions.Probe(ctx, r.src); err != nil {
		return "", err
	}
	if rep.Target, err = definitions.Probe(ctx, r.dst); err != nil {
		return "", err
	}
	add := func(check string, ok bool, detail string, args ...any) {
		rep.Findings = append(rep.Findings, definitions.Finding{Check: check, OK: ok, Detail: fmt.Sprintf(detail, args...)})
	}

	// A mistyped --vhost would select nothing and report success.
	vhostsOK := true
	if err := r.src.CheckVhosts(ctx, r.opts.Vhosts); err != nil {
		add("vhosts", false, "--vhost: %v", err)
		vhostsOK = false
	}

	// The shovel plugin must run where the shovels will.
	side, err := shovel.ParseSide(string(r.opts.Drain.Side))
	if err != nil {
		return "", err
	}
	runner := rep.Target
	if side == shovel.OnSource {
		runner = rep.Source
	}
	hasShovel := slices.Contains(runner.Applications, "rabbitmq_shovel")
	add("shovel plugin", hasShovel, "rabbitmq_shovel on the %s (shovels run there): %v", runner.Name, hasShovel)

	for _, b := range []struct {
		api  *broker.API
		name string
	}{{r.src, "source"}, {r.dst, "target"}} {
		nodes, err := nodes(ctx, b.api)
		if err != nil {
			return "", err
		}
		for _, n := range nodes {
			if n.MemAlarm || n.DiskAlarm {
				add("alarms", false, "%s node %s has a resource alarm (memory %v, disk %v): publishers are blocked", b.name, n.Name, n.MemAlarm, n.DiskAlarm)
			}
			if !n.Running {
				add("nodes running", false, "%s node %s is not running", b.name, n.Name)
			}
		}
		if b.name == "target" {
			rep.Nodes = nodes
		}
	}

	// Clients still attached would make the drain refuse after the import;
	// refuse now, before anything changes (and say so in a dry run).
	if vhostsOK {
		if err := shovel.CheckLive(ctx, r.drainOptions()); errors.Is(err, shovel.ErrLiveClients) {
			add("live clients", false, "%v", err)
		} else if err != nil {
			return "", err
		}
	}

	backlog, err := r.backlog(ctx)
	if err != nil {
		return "", err
	}
	r.sum.Backlog = backlog
	for _, q := range backlog {
		rep.BacklogMessages += q.Messages
		rep.BacklogBytes += q.Bytes
		switch q.Size {
		case SizeEstimated:
			rep.EstimatedMessages += q.Messages
		case SizeUnknown:
			rep.UnsizedMessages += q.Messages
		}
	}
	if rep.EstimatedMessages > 0 {
		add("backlog size", true, "the source's HTTP API has not yet sized %d of %d messages (its statistics lag): sized with the average message size of the rest",
			rep.EstimatedMessages, rep.BacklogMessages)
		slog.Info("backlog size partly estimated", "estimated_messages", rep.EstimatedMessages)
	}
	spare := int64(-1) // the least disk room any running node has left after the sized backlog
	for _, n := range rep.Nodes {
		if !n.Running {
			continue // reported above; its disk and memory figures are zero
		}
		if n.DiskFreeLimit == 0 {
			// RabbitMQ 3.10 can lose a node's stats agent for good when a
			// peer restarts (rabbitmq-server#5496). A full disk cannot
			// lose messages here (the drain pauses on the disk alarm), so
			// this is a warning with the way to fix it.
			add("disk headroom", true, "warning: target node %s is running but its HTTP API has reported no disk or memory figures for %s, so its headroom is unchecked "+
				"(its management stats agent may have crashed, rabbitmq-server#5496: `rabbitmqctl -n %s eval '"+broker.RestartManagement+"'` restarts it); "+
				"a disk or memory alarm there pauses the drain", n.Name, nodesWait, n.Name)
			slog.Warn("no disk or memory figures for a target node; its headroom is unchecked", "node", n.Name)
			continue
		}
		room := n.DiskFree - n.DiskFreeLimit
		need := diskFactor * rep.BacklogBytes
		add("disk headroom", room >= need, "target node %s: %s free above its limit, the backlog needs %s", n.Name, mib(room), mib(need))
		if spare < 0 || room-need < spare {
			spare = max(0, room-need)
		}
		// Quorum queues keep message bodies on disk, so memory is a warning:
		// a node near its watermark blocks publishers, shovels included,
		// and the drain then stalls rather than loses anything.
		if mem := n.MemLimit - n.MemUsed; mem < rep.BacklogBytes {
			add("memory headroom", true, "warning: target node %s: %s below its memory watermark, the backlog is %s; the drain may be throttled", n.Name, mib(mem), mib(rep.BacklogBytes))
			slog.Warn("little memory headroom on a target node", "node", n.Name, "headroom", mib(mem), "backlog", mib(rep.BacklogBytes))
		}
	}

	if rep.UnsizedMessages > 0 {
		// Their size cannot be known yet; say how large they may be.
		room := "unknown"
		if spare >= 0 {
			room = fmt.Sprintf("%.1f KiB", float64(spare)/float64(diskFactor*int64(rep.UnsizedMessages))/1024)
		}
		add("backlog size", true, "warning: the source's HTTP API has not yet sized %d messages (its statistics lag a few seconds behind publishing): disk headroom is judged without them; "+
			"every target node has room for them if they average under %s each. Run again in a few seconds to size them", rep.UnsizedMessages, room)
		slog.Warn("backlog size unknown", "unsized_messages", rep.UnsizedMessages, "room_per_message", room)
	}

	var failed []string
	for _, f := range rep.Findings {
		if !f.OK {
			failed = append(failed, f.Detail)
		}
	}
	if len(failed) > 0 {
		return "", fmt.Errorf("%w: %s", ErrPreflight, strings.Join(failed, "; "))
	}
	return fmt.Sprintf("source %s, target %s (%d nodes); backlog %d messages, %s",
		rep.Source.Version, rep.Target.Version, len(rep.Nodes), rep.BacklogMessages, mib(rep.BacklogBytes)), nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// nodesWait bounds how long nodes waits for running nodes whose figures
// the HTTP API has not reported yet.
const nodesWait = 30 * time.Second

// nodes reads each node's disk and memory figures. Like its applications
// (see definitions.Probe), a node that has just started is listed as
// running without them for a few seconds; read as zeros they would fail
// the headroom check, so it reads again while a running node reports no
// disk_free_limit (never 0 once reported), for up to nodesWait.
func nodes(ctx context.Context, api *broker.API) ([]NodeHeadroom, error) {
	deadline := time.Now().Add(nodesWait)
	for {
		list, err := api.ListNodes(ctx)
		if err != nil {
			return nil, err
		}
		var out []NodeHeadroom
		silent := false
		for _, n := range list {
			out = append(out, headroom(n))
			silent = silent || (n.Running && !n.HasFigures())
		}
		if !silent || time.Now().After(deadline) {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// backlog reads each source queue's depth and size now, without waiting
// for the HTTP API to catch up:
//
//   - messages: a passive declare's count, which is current; the API's
//     count if larger (a quorum queue's leader may answer a passive
//     declare with 0 while busy);
//   - bytes: the API's message_bytes, which lags by the statistics
//     interval (and a quorum queue's by its metrics tick). Where the API
//     counted another number of messages than there are, its bytes are
//     scaled to the current count (its average message size in that
//     queue); a queue the API has not sized at all yet (no count, or a
//     count but no bytes) gets the average message size of the queues it
//     has sized, and counts as estimated. When it has sized none, the
//     messages are unsized and left out of the bytes.
//
// What it cannot know: message_bytes counts bodies only, not properties,
// headers or the per-message overhead of the target's quorum log; the
// sizes of messages published since the API's last statistics are
// averages; and messages published after preflight are not counted at all.
func (r *runner) backlog(ctx context.Context) ([]QueueBacklog, error) {
	depths := broker.NewDepths(r.opts.Source)
	defer depths.Close()
	queues, err := r.src.ListQueues(ctx, "", "name", "vhost", "messages", "message_bytes")
	if err != nil {
		return nil, err
	}
	var out []QueueBacklog
	var sizedBytes, sizedMessages int64
	for _, q := range queues {
		if len(r.opts.Vhosts) > 0 && !slices.Contains(r.opts.Vhosts, q.Vhost) {
			continue
		}
		ready, _, err := depths.Depth(ctx, q.Vhost, q.Name)
		if err != nil && !errors.Is(err, broker.ErrNoQueue) {
			return nil, err
		}
		counted, _ := q.Count()
		n := max(ready, counted)
		if n == 0 {
			continue
		}
		b := QueueBacklog{Vhost: q.Vhost, Queue: q.Name, Messages: n}
		switch {
		case counted == 0 || q.MessageBytes == 0:
			// Not sized yet: a quorum queue reports its count a tick
			// before its bytes. Sized below from the others' average.
			b.Size = SizeUnknown
		case counted == n:
			b.Bytes, b.Size = q.MessageBytes, SizeCounted
		default:
			b.Bytes, b.Size = q.MessageBytes*int64(n)/int64(counted), SizeScaled
		}
		if b.Size != SizeUnknown {
			sizedBytes += q.MessageBytes
			sizedMessages += int64(counted)
		}
		out = append(out, b)
	}
	if sizedMessages > 0 {
		for i, b := range out {
			if b.Size == SizeUnknown {
				out[i].Bytes, out[i].Size = sizedBytes*int64(b.Messages)/sizedMessages, SizeEstimated
			}
		}
	}
	return out, nil
}
