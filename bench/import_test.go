package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/warrenmq/warren/definitions"
	"github.com/warrenmq/warren/internal/brokertest"
)

// importExchanges are the topic exchanges the import's bindings come from.
const importExchanges = 30

// definitionsFile is a whole-broker definitions file holding one vhost
// with importExchanges topic exchanges, queues quorum queues, and two
// bindings per queue.
func definitionsFile(vhost string, queues int) ([]byte, error) {
	var xs, qs, bs []map[string]any
	for i := 0; i < importExchanges; i++ {
		xs = append(xs, map[string]any{"name": fmt.Sprintf("events-%02d", i), "vhost": vhost, "type": "topic",
			"durable": true, "auto_delete": false, "internal": false, "arguments": map[string]any{}})
	}
	for i := 0; i < queues; i++ {
		q := fmt.Sprintf("app-%04d", i)
		qs = append(qs, map[string]any{"name": q, "vhost": vhost, "durable": true, "auto_delete": false,
			"arguments": map[string]any{"x-queue-type": "quorum"}})
		for j := 0; j < 2; j++ {
			bs = append(bs, map[string]any{"source": fmt.Sprintf("events-%02d", (2*i+j)%importExchanges), "vhost": vhost,
				"destination": q, "destination_type": "queue", "routing_key": fmt.Sprintf("%s.%d.#", q, j), "arguments": map[string]any{}})
		}
	}
	return json.Marshal(map[string]any{"rabbit_version": "3.10.8", "vhosts": []any{map[string]any{"name": vhost}},
		"exchanges": xs, "queues": qs, "bindings": bs})
}

// compareImport imports the same definitions (in vhosts of their own) with
// a raw POST /api/definitions and with `warren definitions import`, in
// turns (importRounds of each), and reports the median of each.
func (l *runner) compareImport(t *table) {
	const raw, mine = "raw POST /api/definitions", "warren definitions import"
	times := map[string][]float64{}
	notes := map[string]string{}
	for r := 0; r < l.s.importRounds; r++ {
		order := []string{raw, mine}
		if r%2 == 1 {
			order = []string{mine, raw}
		}
		for _, m := range order {
			vhost := brokertest.VhostName(l.b)
			data, err := definitionsFile(vhost, l.s.importQueues)
			if err != nil {
				l.b.Fatal(err)
			}
			var secs float64
			if m == raw {
				secs = l.rawImport(data)
			} else {
				secs = l.warrenImport(vhost, data)
			}
			notes[m] = "quorum leaders " + l.leaders(vhost)
			times[m] = append(times[m], secs)
			l.progress("import round %d: %s %.1fs (%s)", r+1, m, secs, notes[m])
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			if err := l.TargetAPI.DeleteVhost(ctx, vhost); err != nil {
				l.b.Fatal(err)
			}
			cancel()
		}
	}
	load := fmt.Sprintf("%d quorum queues, %d bindings", l.s.importQueues, 2*l.s.importQueues)
	t.rows = append(t.rows,
		row{section: "import", load: load, method: raw, seconds: median(times[raw]), note: notes[raw]},
		row{section: "import", load: load, method: mine, seconds: median(times[mine]), note: notes[mine],
			vsRaw: median(times[mine]) / median(times[raw])})
}

// rawImport POSTs the whole file, as `curl -X POST .../api/definitions`.
func (l *runner) rawImport(data []byte) float64 {
	ep := l.Target
	req, err := http.NewRequest(http.MethodPost, ep.API+"/api/definitions", bytes.NewReader(data))
	if err != nil {
		l.b.Fatal(err)
	}
	req.SetBasicAuth(ep.APIUser, ep.APIPassword)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := (&http.Client{Timeout: 30 * time.Minute}).Do(req)
	secs := since(start)
	if err != nil {
		l.b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		l.b.Fatalf("POST /api/definitions: HTTP %d", resp.StatusCode)
	}
	return secs
}

// warrenImport runs `warren definitions import` on the file, every queue
// keeping its (quorum) type.
func (l *runner) warrenImport(vhost string, data []byte) float64 {
	file := filepath.Join(l.b.TempDir(), vhost+".json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		l.b.Fatal(err)
	}
	cmd := exec.Command(l.s.bin, "definitions", "import", "--file", file, "--queue-type", "keep", "-o", "json")
	cmd.Env = l.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	secs := since(start)
	if err != nil {
		l.b.Fatalf("warren definitions import: %v\n%s", err, stderr.String())
	}
	var out struct {
		Result definitions.ImportResult `json:"result"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		l.b.Fatalf("warren definitions import -o json: %v", err)
	}
	if want := 1 + importExchanges + 3*l.s.importQueues; out.Result.Total() != want || out.Result.Confirmed != want {
		l.b.Fatalf("warren definitions import created %d and confirmed %d objects, want %d", out.Result.Total(), out.Result.Confirmed, want)
	}
	return secs
}

// leaders counts the quorum leaders of vhost per node.
func (l *runner) leaders(vhost string) string {
	qs, err := l.TargetAPI.ListQueues(context.Background(), vhost, "leader")
	if err != nil {
		l.b.Fatal(err)
	}
	count := map[string]int{}
	for _, q := range qs {
		count[q.Leader]++
	}
	var parts []string
	for _, n := range l.cluster.Running() {
		parts = append(parts, fmt.Sprint(count[n]))
	}
	return fmt.Sprintf("%v per node", parts)
}
