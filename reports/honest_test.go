package reports

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

// copyFixtureRun copies testdata/<name>/results.json into a new run folder
// under dir/runs and returns it relative to dir.
func copyFixtureRun(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name, rundir.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "runs", name)
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, rundir.ResultsFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join("runs", name)
}

// zeroLatency matches a latency printed as zero: what a table shows when
// it takes a missing value for a measured one.
var zeroLatency = regexp.MustCompile(`\b0\.00\b`)

// TestBatchTablesAreHonest renders the nightly and the sweep page over a
// kubernetes and a lease run, whose workloads have no read or write
// operation: each row must show the latencies of the operations its
// workload made, and "—", not a zero, for one none of which was ok.
func TestBatchTablesAreHonest(t *testing.T) {
	for _, kind := range []string{KindNightly, KindSweep} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			b := Batch{Kind: kind, Title: "gate", Command: "faultline " + kind, Started: time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC),
				Runs: []string{copyFixtureRun(t, dir, "kubernetes"), copyFixtureRun(t, dir, "lease"), copyFixtureRun(t, dir, "smallrun")}}
			if err := WriteBatch(dir, b); err != nil {
				t.Fatal(err)
			}
			page, err := os.ReadFile(filepath.Join(dir, rundir.ReportFile))
			if err != nil {
				t.Fatal(err)
			}
			table := string(page)[strings.Index(string(page), `<table id="runs">`):]
			row := func(name string) string {
				i := strings.Index(table, ">"+name+"<")
				if i < 0 {
					t.Fatalf("no row for %s", name)
				}
				return table[i : i+strings.Index(table[i:], "</tr>")]
			}
			for name, wants := range map[string][]string{
				"kvnode-3n-kubernetes-partition-leader": {"k8s-create</span> 3.41 / 17.93", "k8s-update</span> 3.72 / 19.04", "k8s-get</span> 1.27 / 8.66", "k8s-delete</span> —"},
				"kvnode-3n-lease-kill-random":           {"lease-put</span> 2.61 / 13.39", "lease-read</span> 1.83 / 9.21", "lease-keepalive</span> 1.09 / 6.73"},
				"smallrun":                              {"read</span> ", "write</span> ", "cas</span> "},
			} {
				r := row(name)
				for _, w := range wants {
					if !strings.Contains(r, w) {
						t.Errorf("row of %s lacks %q:\n%s", name, w, r)
					}
				}
				if z := zeroLatency.FindString(r); z != "" {
					t.Errorf("row of %s shows a zero latency:\n%s", name, r)
				}
				if strings.Contains(name, "kubernetes") && strings.Contains(r, ">read<") {
					t.Errorf("row of %s has a read column its workload never made:\n%s", name, r)
				}
			}
		})
	}
}

// TestCompareNoReadLatency: a read mode none of whose reads succeeded has
// no read latency, and the comparison says so instead of a zero.
func TestCompareNoReadLatency(t *testing.T) {
	s := int64(time.Second)
	timedOut := []history.Event{
		{Type: history.Invoke, Process: 0, F: "kv-put", Time: 0, Key: "/kv/k1", Value: "v1"},
		{Type: history.OK, Process: 0, F: "kv-put", Time: s / 10, Key: "/kv/k1", Revision: 2, Member: "n1"},
		{Type: history.Invoke, Process: 1, F: "kv-get", Time: s, Key: "/kv/k1"},
		{Type: history.Info, Process: 1, F: "kv-get", Time: 3 * s, Key: "/kv/k1", Error: "context deadline exceeded"},
	}
	_, ser := partitionHistories()
	page := renderCompare(t, timedOut, ser)
	want := `<tr><th>read latency p50 / p99 / p99.9</th><td class="num">— (no ok reads)</td><td class="num">`
	if !strings.Contains(string(page), want) {
		t.Errorf("comparison page lacks %q", want)
	}
	if zeroLatency.MatchString(string(page)) {
		t.Errorf("comparison page shows a zero latency: %s", zeroLatency.FindString(string(page)))
	}
}

// A workload without reads of its own (append's are inside transactions)
// shows no read counts or throughput rather than zeroes.
func TestCompareWithoutReads(t *testing.T) {
	writes := []history.Event{
		{Type: history.Invoke, Process: 0, F: "kv-put", Time: 0, Key: "/kv/k1", Value: "v1"},
		{Type: history.OK, Process: 0, F: "kv-put", Time: int64(time.Second) / 10, Key: "/kv/k1", Revision: 2, Member: "n1"},
	}
	page := string(renderCompare(t, writes, writes))
	for _, want := range []string{`<td class="num">— (no reads of its own)</td>`, `<tr><th>read throughput</th><td class="num">—</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("comparison page lacks %q", want)
		}
	}
	if strings.Contains(page, "0 ok/s") || strings.Contains(page, "0 / 0 / 0") {
		t.Error("comparison page shows zero reads for a workload that makes none")
	}
}
