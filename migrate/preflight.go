package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/preflight"
	"github.com/warrenmq/warren/shovel"
)

// PreflightReport is what the preflight phase learned about both brokers.
type PreflightReport struct {
	Source *definitions.Broker `json:"source"`
	Target *definitions.Broker `json:"target"`
	Nodes  []NodeHeadroom      `json:"target_nodes"`
	// Findings are every check's outcome, the CLI's own (Options.Inputs)
	// first: the one table a migration stops on.
	Findings []preflight.Finding `json:"findings"`
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

// diskFactor is the disk headroom asked of each target node per byte of
// backlog: every quorum queue member keeps a full copy, written to the WAL
// and again to segment files before the WAL is truncated.
const diskFactor = 2

// preflight checks every input before anything changes, and reports every
// finding at once: the CLI's flags (Options.Inputs), the TLS files, both
// brokers' logins, tags, permissions and nodes (see preflight.Endpoint),
// that they are two brokers, the vhosts, the shovel plugin, alarms, live
// clients, disk headroom for the backlog, and the definitions plan checked
// against the target (invalid objects, missing references, conflicts,
// queues that need a decision). It fails with a *preflight.Error whose
// class is the failure to fix first.
func (r *runner) preflight(ctx context.Context) (string, error) {
	rep := &PreflightReport{}
	r.sum.Preflight = rep
	var checks preflight.Report
	defer func() { rep.Findings = checks.Findings }()
	checks.Add(r.opts.Inputs...)
	checks.Add(preflight.TLSFiles(r.opts.Target.TLS, preflight.UsesTLS(r.opts.Source, r.opts.Target))...)
	if err := r.checkBrokers(ctx, rep, &checks); err != nil {
		return "", err
	}
	if err := checks.Err(); err != nil {
		return "", err
	}
	return fmt.Sprintf("source %s, target %s (%d nodes); backlog %d messages, %s",
		rep.Source.Version, rep.Target.Version, len(rep.Nodes), rep.BacklogMessages, mib(rep.BacklogBytes)), nil
}

// checkBrokers adds the brokers' findings to checks. It returns an error
// only for a failure that is no finding (a cancelled context).
func (r *runner) checkBrokers(ctx context.Context, rep *PreflightReport, checks *preflight.Report) error {
	src, dst := r.endpoints(ctx)
	checks.Add(src.Findings...)
	checks.Add(dst.Findings...)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if checks.Err() != nil {
		// The migration stops whatever the nodes' figures say: report
		// the rest now rather than wait for figures a node has not sent.
		ctx = definitions.WithoutStatsWait(ctx)
	}
	if !src.APIOK || !dst.APIOK || !hasAdmin(src) || !hasAdmin(dst) {
		// Every other check reads the brokers through these logins, as
		// an administrator (reported above when it is not one).
		return nil
	}
	var err error
	if rep.Source, err = definitions.Probe(ctx, r.src); err != nil {
		checks.Add(preflight.Failf(preflight.Unfit, "source", "%v", err))
		return nil
	}
	if rep.Target, err = definitions.Probe(ctx, r.dst); err != nil {
		checks.Add(preflight.Failf(preflight.Unfit, "target", "%v", err))
		return nil
	}
	if err := broker.CheckDistinct(ctx, r.src, r.dst); errors.Is(err, broker.ErrSameBroker) {
		checks.Add(preflight.Failf(preflight.Usage, "source and target", "%v", err))
		return nil
	}
	return r.checkMigration(ctx, rep, checks)
}

func hasAdmin(s *preflight.Side) bool { return s.Has("administrator") }

// endpoints checks both sides at once.
func (r *runner) endpoints(ctx context.Context) (src, dst *preflight.Side) {
	return preflight.Endpoints(ctx,
		r.opts.Source, preflight.Needs{
			Tag: "administrator", Why: "exporting the source's definitions",
			Vhosts: r.opts.Vhosts, Read: true, CountMismatch: preflight.OK},
		r.opts.Target, preflight.Needs{
			Tag: "administrator", Why: "importing definitions and running shovels",
			Vhosts: r.opts.Vhosts, Configure: !r.opts.SkipVerify, Write: true, Read: !r.opts.SkipVerify,
			CountMismatch: preflight.Fail, ExpectNodes: r.opts.Verify.ExpectNodes})
}

// checkMigration is the migration's own checks, on two brokers that
// answer.
func (r *runner) checkMigration(ctx context.Context, rep *PreflightReport, checks *preflight.Report) error {
	add := func(check string, ok bool, detail string, args ...any) {
		if ok {
			checks.Add(preflight.Passf(check, detail, args...))
		} else {
			checks.Add(preflight.Failf(preflight.Unfit, check, detail, args...))
		}
	}
	warn := func(check string, detail string, args ...any) { checks.Add(preflight.Warnf(check, detail, args...)) }

	// A mistyped --vhost would select nothing and report success.
	vhostsOK := true
	if err := r.src.CheckVhosts(ctx, r.opts.Vhosts); err != nil {
		checks.Add(preflight.Failf(preflight.Usage, "vhosts", "--vhost: %v", err))
		vhostsOK = false
	}

	// The shovel plugin must run where the shovels will.
	side, err := shovel.ParseSide(string(r.opts.Drain.Side))
	if err != nil {
		checks.Add(preflight.Failf(preflight.Usage, "flags", "--shovel-side: %v", err))
		return nil
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
			checks.Add(preflight.Failf(preflight.Unfit, b.name+" nodes", "%v", err))
			continue
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
	if vhostsOK && r.opts.Drain.Validate() == nil {
		if err := shovel.CheckLive(ctx, r.drainOptions()); errors.Is(err, shovel.ErrLiveClients) {
			add("live clients", false, "%v", err)
		} else if err != nil {
			add("live clients", false, "%v", err)
		}
	}

	if !vhostsOK {
		return nil // a plan of the vhosts that exist would be beside the point
	}
	if err := r.opts.Plan.Validate(); err != nil {
		// No plan can be made; the CLI reports its flags itself
		// (Options.Inputs), so say it only for other callers.
		if len(r.opts.Inputs) == 0 {
			checks.Add(preflight.Failf(preflight.Usage, "definitions", "plan options: %v", err))
		}
	} else {
		r.checkPlan(ctx, checks)
	}

	backlog, err := r.backlog(ctx)
	if err != nil {
		add("backlog", false, "%v", err)
		return nil
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
			warn("disk headroom", "target node %s is running but its HTTP API has reported no disk or memory figures for %s, so its headroom is unchecked "+
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
			warn("memory headroom", "target node %s: %s below its memory watermark, the backlog is %s; the drain may be throttled", n.Name, mib(mem), mib(rep.BacklogBytes))
			slog.Warn("little memory headroom on a target node", "node", n.Name, "headroom", mib(mem), "backlog", mib(rep.BacklogBytes))
		}
	}

	if rep.UnsizedMessages > 0 {
		// Their size cannot be known yet; say how large they may be.
		room := "unknown"
		if spare >= 0 {
			room = fmt.Sprintf("%.1f KiB", float64(spare)/float64(diskFactor*int64(rep.UnsizedMessages))/1024)
		}
		warn("backlog size", "the source's HTTP API has not yet sized %d messages (its statistics lag a few seconds behind publishing): disk headroom is judged without them; "+
			"every target node has room for them if they average under %s each. Run again in a few seconds to size them", rep.UnsizedMessages, room)
		slog.Warn("backlog size unknown", "unsized_messages", rep.UnsizedMessages, "room_per_message", room)
	}

	return nil
}

// checkPlan plans the definitions and checks the plan against the target,
// as the definitions phase will import it, and adds what stands in the
// way: objects the target would refuse or that refer to missing ones
// (usage), a target unfit for them (preflight), conflicts and queues that
// need a decision (conflict).
func (r *runner) checkPlan(ctx context.Context, checks *preflight.Report) {
	plan, err := Planned(ctx, r.src, r.opts.StatePath, r.opts.Vhosts, &r.opts.Plan)
	if err != nil {
		class := preflight.Unfit
		if definitions.ClassOf(err) == definitions.ClassUsage {
			class = preflight.Usage
		}
		checks.Add(preflight.Failf(class, "definitions", "plan: %v", err))
		return
	}
	r.sum.Plan = plan
	chk, err := plan.Check(ctx, r.dst)
	r.sum.Check = chk
	if chk == nil {
		checks.Add(preflight.Failf(preflight.Unfit, "definitions", "check the plan against the target: %v", err))
		return
	}
	checks.Add(preflight.Plan(chk)...)
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
	if !definitions.StatsWait(ctx) {
		deadline = time.Now()
	}
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
