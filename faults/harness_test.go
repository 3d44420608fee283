package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/internal/brokertest"
	"github.com/warrenmq/warren/shovel"
)

// all runs every case; without it only the fast ones run.
var all = os.Getenv("WARREN_FAULTS") == "all"

// row is one line of the suite's table.
type row struct {
	name              string
	lost, dups, bound int
	rerunExit         int
	seconds           float64
	firstExit         int
	pass              bool
}

var (
	rowsMu sync.Mutex
	rows   []row
)

func TestMain(m *testing.M) {
	code := m.Run()
	rowsMu.Lock()
	defer rowsMu.Unlock()
	if len(rows) > 0 {
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CASE\tLOST\tDUPLICATES\tBOUND\tFIRST EXIT\tRERUN EXIT\tSECONDS\tRESULT")
		for _, r := range rows {
			result := "pass"
			if !r.pass {
				result = "FAIL"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.0f\t%s\n", r.name, r.lost, r.dups, r.bound, r.firstExit, r.rerunExit, r.seconds, result)
		}
		tw.Flush()
	}
	os.Exit(code)
}

// fault declares a case: fast cases run in every `go test`, the others
// with WARREN_FAULTS=all (make faults).
func fault(t *testing.T, fast bool) {
	t.Helper()
	if !fast && !all {
		t.Skip("a long fault case: run `make faults` (WARREN_FAULTS=all) for every case")
	}
}

// world is one case's brokers, queues and published ids.
type world struct {
	t      *testing.T
	e      *brokertest.Env
	env    []string
	queues []string
	ids    []string
	start  time.Time
	src    *amqp.Channel
}

// setup gives the case the lab to itself, and queues q00.. on the source
// (classic) holding perQueue messages each with unique ids; withTarget
// declares them on the target too, as quorum queues, as an import would.
func setup(t *testing.T, queues, perQueue int, withTarget bool) *world {
	e := brokertest.NewDisruptive(t)
	w := &world{t: t, e: e, env: e.CLIEnv(t), src: e.Channel(t, e.Source, 0)}
	dst := e.Channel(t, e.Target, 0)
	for i := 0; i < queues; i++ {
		q := fmt.Sprintf("q%02d", i)
		_, err := w.src.QueueDeclare(q, true, false, false, false, nil)
		require.NoError(t, err)
		if withTarget {
			_, err = dst.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
			require.NoError(t, err)
		}
		w.ids = append(w.ids, brokertest.PublishIDs(t, w.src, q, t.Name()+"/"+q, perQueue, 1024)...)
		w.queues = append(w.queues, q)
	}
	w.start = time.Now()
	return w
}

// drain is the case's drain command.
func (w *world) drain(extra ...string) []string {
	return append([]string{"drain", "--vhost", w.e.Vhost, "--progress", "log"}, extra...)
}

// with returns the case's environment with some variables replaced.
func (w *world) with(kv ...string) []string {
	env := append([]string(nil), w.env...)
	for _, x := range kv {
		key := x[:strings.IndexByte(x, '=')+1]
		out := env[:0]
		for _, e := range env {
			if !strings.HasPrefix(e, key) {
				out = append(out, e)
			}
		}
		env = out
		if !strings.HasSuffix(x, "=") {
			env = append(env, x)
		}
	}
	return env
}

// depth is a queue's depth on ep (the larger of passive and HTTP for the
// target, whose quorum queues may answer a passive declare with 0).
func (w *world) depth(target bool, q string) int {
	ep, api := w.e.Source, w.e.SourceAPI
	if target {
		ep, api = w.e.Target, w.e.TargetAPI
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for i := range ep.AMQP {
		conn, err := ep.DialNode(ctx, i, w.e.Vhost)
		if err != nil {
			continue
		}
		if ch, err := conn.Channel(); err == nil {
			if st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err == nil {
				n = st.Messages
			}
		}
		_ = conn.Close()
		break
	}
	if info, err := api.GetQueue(ctx, w.e.Vhost, q); err == nil {
		if c, ok := info.Count(); ok {
			n = max(n, c)
		}
	}
	return n
}

// arrived is what the target queues hold.
func (w *world) arrived() int {
	n := 0
	for _, q := range w.queues {
		n += w.depth(true, q)
	}
	return n
}

// waitArrived waits until at least min messages are on the target.
func (w *world) waitArrived(min int) {
	w.t.Helper()
	brokertest.Eventually(w.t, 2*time.Minute, func() error {
		if n := w.arrived(); n < min {
			return fmt.Errorf("%d of %d arrived", n, min)
		}
		return nil
	})
}

// bound adds up the duplicate bounds warren recorded for the case's
// queues: its drain state (WARREN_STATE_DIR) keeps every queue's bound,
// from the first run on, whichever run finished the queue.
func (w *world) bound() int {
	w.t.Helper()
	var dir string
	for _, kv := range w.env {
		if v, ok := strings.CutPrefix(kv, "WARREN_STATE_DIR="); ok {
			dir = v
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "drain-*.json"))
	require.NoError(w.t, err)
	n := 0
	for _, f := range files {
		st, err := shovel.OpenState(f)
		require.NoError(w.t, err)
		for _, q := range st.All() {
			if q.Vhost == w.e.Vhost {
				n += q.DuplicateBound
			}
		}
	}
	return n
}

// finish brings the lab back, counts every message by id on both sides and
// records the case: 0 lost, duplicates within the bound, and the rerun's
// exit code as wanted.
func (w *world) finish(firstExit int, rerun brokertest.Result, wantRerun, reportedBound int) {
	t := w.t
	t.Helper()
	require.NoError(t, w.e.Lab.Up(context.Background()), "bring the lab back up before counting")
	target := brokertest.Census(t, w.e.Target, w.e.Vhost, w.queues)
	source := brokertest.Census(t, w.e.Source, w.e.Vhost, w.queues)
	tally := brokertest.TallyIDs(w.ids, target, source)
	r := row{name: t.Name(), lost: tally.Lost, dups: tally.Duplicates, bound: reportedBound,
		firstExit: firstExit, rerunExit: rerun.Code, seconds: time.Since(w.start).Seconds()}
	ok := assert.Zero(t, tally.Lost, "lost messages, e.g. %v", tally.Missing)
	ok = assert.Zero(t, tally.Unknown, "messages nobody published") && ok
	ok = assert.LessOrEqual(t, tally.Duplicates, reportedBound, "duplicates beyond the bound warren reported") && ok
	ok = assert.Equal(t, wantRerun, rerun.Code, "the same command run again: %s", rerun.Stderr) && ok
	r.pass = ok
	rowsMu.Lock()
	rows = append(rows, r)
	rowsMu.Unlock()
	t.Logf("%s: %d published, %d lost, %d duplicates (bound %d), first exit %d, rerun exit %d, %.0fs",
		t.Name(), tally.Expected, tally.Lost, tally.Duplicates, reportedBound, firstExit, rerun.Code, r.seconds)
}

// midDrain starts args, waits until arrived messages are on the target,
// injects the fault, waits for the process to end and returns its result.
func (w *world) midDrain(env, args []string, arrived int, inject func(p *brokertest.Process)) brokertest.Result {
	w.t.Helper()
	p := brokertest.Start(w.t, env, args...)
	w.waitArrived(arrived)
	inject(p)
	_ = p.Wait()
	return p.Result()
}

// conclude runs the command again and records the case (see finish).
func (w *world) conclude(env, args []string, first brokertest.Result, wantRerun int) {
	w.t.Helper()
	w.finish(first.Code, brokertest.Run(w.t, env, args...), wantRerun, w.bound())
}

// sends a signal to the warren process.
func send(sig syscall.Signal) func(p *brokertest.Process) {
	return func(p *brokertest.Process) { _ = p.Process.Signal(sig) }
}
