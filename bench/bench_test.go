package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/lab"
	"github.com/warrenmq/warren/shovel"
)

// settings size the benchmark; each has a WARREN_BENCH_* variable.
type settings struct {
	// messages is the drain backlog per load, split evenly over its queues.
	messages int
	// loads are the queue counts compared.
	loads []int
	// perNode are the --parallel values measured at the largest load, in
	// shovels per running node, besides the default
	// (shovel.ParallelPerNode, the drain rows' own); 0 skips them.
	perNode []int
	// rounds repeats every drain comparison; the table shows the median.
	// The lab shares two cores with whatever else runs: a single round
	// can be off by a quarter.
	rounds int
	// rssMessages is the backlog warren's peak RSS is measured on (0: skip).
	rssMessages int
	// importQueues quorum queues with two bindings each (0: skip).
	importQueues int
	// importRounds repeats the import comparison: each takes minutes,
	// most of it deleting the 3,000 quorum queues again.
	importRounds int
	// bin is the warren binary; built from this checkout when empty.
	bin string
}

func loadSettings(b *testing.B) settings {
	s := settings{messages: 120_000, loads: []int{1, 4, 12}, perNode: []int{1, 4}, rounds: 3,
		rssMessages: 1_000_000, importQueues: 3000, importRounds: 1, bin: os.Getenv("WARREN_BENCH_BIN")}
	num := func(key string, dst *int) {
		if v := os.Getenv(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				b.Fatalf("%s=%q: want a whole number", key, v)
			}
			*dst = n
		}
	}
	list := func(key string, dst *[]int) {
		if v := os.Getenv(key); v != "" {
			*dst = nil
			if v == "0" {
				return // skip
			}
			for _, f := range strings.Split(v, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil || n <= 0 {
					b.Fatalf("%s=%q: want positive numbers, comma separated", key, v)
				}
				*dst = append(*dst, n)
			}
		}
	}
	num("WARREN_BENCH_MESSAGES", &s.messages)
	list("WARREN_BENCH_LOADS", &s.loads)
	list("WARREN_BENCH_PER_NODE", &s.perNode)
	num("WARREN_BENCH_ROUNDS", &s.rounds)
	num("WARREN_BENCH_RSS_MESSAGES", &s.rssMessages)
	num("WARREN_BENCH_IMPORT_QUEUES", &s.importQueues)
	num("WARREN_BENCH_IMPORT_ROUNDS", &s.importRounds)
	s.rounds, s.importRounds = max(1, s.rounds), max(1, s.importRounds)
	return s
}

// BenchmarkCutover runs every comparison once and prints the table:
//
//	make bench
//	go test -run '^$' -bench Cutover -benchtime 1x -timeout 3h ./bench/
func BenchmarkCutover(b *testing.B) {
	s := loadSettings(b)
	env := brokertest.NewDisruptive(b) // nothing else runs on the lab meanwhile
	if s.bin == "" {
		s.bin = buildWarren(b)
	}
	l := &runner{Env: env, b: b, s: s}
	l.discover()
	var t table
	t.header = l.describe()
	for i := 0; i < b.N; i++ {
		var byDefault float64 // warren's median at the largest load
		for _, q := range s.loads {
			byDefault = l.compareDrains(&t, q)
		}
		if len(s.loads) > 0 && len(s.perNode) > 0 {
			l.compareParallel(&t, s.loads[len(s.loads)-1], byDefault)
		}
		if s.rssMessages > 0 {
			l.measureRSS(&t)
		}
		if s.importQueues > 0 {
			l.compareImport(&t)
		}
	}
	t.footer = append(t.footer, "machine at the end: "+machine())
	fmt.Print(t.String())
}

// buildWarren builds the CLI from this checkout into a temporary directory.
func buildWarren(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "warren")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/warren")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build warren: %v\n%s", err, out)
	}
	return bin
}

// runner is the benchmark's view of the brokers.
type runner struct {
	*brokertest.Env
	b       testing.TB
	s       settings
	cluster *broker.Cluster
	// nodeIndex maps a target node's name to its AMQP URL in Target.
	nodeIndex map[string]int
}

func (l *runner) discover() {
	ctx := context.Background()
	c, err := l.TargetAPI.Discover(ctx)
	if err != nil {
		l.b.Fatal(err)
	}
	if len(c.Unreached) > 0 {
		l.b.Fatalf("the benchmark places shovels on leader nodes and needs every node's API (WARREN_NODE_API): %v", c.Unreached)
	}
	l.cluster = c
	l.nodeIndex = map[string]int{}
	for i, n := range l.Lab.NodesOf(lab.Target) {
		l.nodeIndex[n.Erlang] = i
	}
}

func (l *runner) describe() []string {
	ctx := context.Background()
	version := "?"
	if ov, err := l.TargetAPI.Overview(ctx); err == nil {
		version = ov.RabbitMQVersion
	}
	return []string{
		fmt.Sprintf("warren bench: lab source (1 node) and target (%d running nodes), RabbitMQ %s, on %d CPUs (%s)", len(l.cluster.Running()), version, runtime.NumCPU(), machine()),
		fmt.Sprintf("drain loads: %d persistent 1 KiB messages per load, classic source queues, quorum destination queues led by each node in turn; median of %d round(s)", l.s.messages, l.s.rounds),
	}
}

// machine is the load average and CPU count, for the table.
func machine() string {
	avg, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	f := strings.Fields(string(avg))
	return fmt.Sprintf("load average %s %s %s", f[0], f[1], f[2])
}

// methods compared at every load.
const (
	methodWarren = "warren drain"
	methodHand   = "hand-made shovels"
	methodCopier = "amqp091-go copier"
)

// compareDrains moves the same load with each method, in an order that
// rotates from round to round and load to load, so that none always goes
// first on a fresh broker. It returns warren's median.
func (l *runner) compareDrains(t *table, queues int) float64 {
	methods := []string{methodWarren, methodHand, methodCopier}
	times := map[string][]float64{}
	notes := map[string]string{}
	for r := 0; r < l.s.rounds; r++ {
		shift := (r + queues) % len(methods)
		order := append(append([]string{}, methods[shift:]...), methods[:shift]...)
		for _, m := range order {
			ld := l.prepare(queues, l.s.messages/queues, false)
			var secs float64
			switch m {
			case methodWarren:
				res := l.warren(ld)
				secs, notes[m] = res.seconds, res.note()
			case methodHand:
				secs = l.handMade(ld)
			case methodCopier:
				secs = l.copier(ld)
			}
			ld.check()
			ld.remove()
			times[m] = append(times[m], secs)
			l.progress("%d queues, round %d: %s %.1fs", queues, r+1, m, secs)
		}
	}
	load := fmt.Sprintf("%d × %d", queues, l.s.messages/queues)
	fastest := 0.0
	med := map[string]float64{}
	for _, m := range methods {
		med[m] = median(times[m])
		if fastest == 0 || med[m] < fastest {
			fastest = med[m]
		}
	}
	for _, m := range methods {
		row := row{section: "drain", load: load, method: m, seconds: med[m], messages: queues * (l.s.messages / queues), note: notes[m]}
		if m == methodWarren {
			row.vsHand, row.vsFastest = med[methodHand]/med[m], fastest/med[m]
		}
		t.rows = append(t.rows, row)
	}
	return med[methodWarren]
}

// compareParallel drains the largest load with other --parallel values
// than the default, whose median (byDefault) the drain rows measured.
func (l *runner) compareParallel(t *table, queues int, byDefault float64) {
	nodes := len(l.cluster.Running())
	load := fmt.Sprintf("%d × %d", queues, l.s.messages/queues)
	perNode := append([]int{shovel.ParallelPerNode}, l.s.perNode...)
	sort.Ints(perNode)
	for _, per := range slices.Compact(perNode) {
		method := fmt.Sprintf("warren --parallel %d (%d per node)", per*nodes, per)
		if per == shovel.ParallelPerNode {
			t.rows = append(t.rows, row{section: "parallel", load: load, method: method + ", the default", seconds: byDefault,
				messages: queues * (l.s.messages / queues), note: "the drain row above"})
			continue
		}
		var times []float64
		var note string
		for r := 0; r < l.s.rounds; r++ {
			ld := l.prepare(queues, l.s.messages/queues, false)
			res := l.warren(ld, "--parallel", strconv.Itoa(per*nodes))
			ld.check()
			ld.remove()
			times = append(times, res.seconds)
			note = res.note()
			l.progress("%d queues, round %d: %s %.1fs", queues, r+1, method, res.seconds)
		}
		t.rows = append(t.rows, row{section: "parallel", load: load, method: method,
			seconds: median(times), messages: queues * (l.s.messages / queues), note: note})
	}
}

// measureRSS drains a large backlog with warren and reads its peak RSS.
func (l *runner) measureRSS(t *table) {
	const queues = 10
	ld := l.prepare(queues, l.s.rssMessages/queues, true)
	res := l.warren(ld)
	ld.check()
	ld.remove()
	t.rows = append(t.rows, row{section: "rss", load: fmt.Sprintf("%d × %d", queues, l.s.rssMessages/queues), method: methodWarren,
		seconds: res.seconds, messages: queues * (l.s.rssMessages / queues), rss: res.maxRSS, note: res.note()})
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64{}, xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// since is the seconds from start, for the rows.
func since(start time.Time) float64 { return time.Since(start).Seconds() }

// progress says what the benchmark is doing, on stderr at once: a run
// takes half an hour and go test shows benchmark logs only at the end.
func (l *runner) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
