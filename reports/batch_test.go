package reports

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/rundir"
)

// batchRun stores r as a run of the batch in dir, started at started, and
// returns its folder relative to dir.
func batchRun(t *testing.T, dir string, r *rundir.Results, started time.Time) string {
	t.Helper()
	run, err := rundir.NewDir(filepath.Join(dir, "runs"), r.Config.Name, started)
	if err != nil {
		t.Fatal(err)
	}
	if err := rundir.Write(run, r); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(dir, run)
	return rel
}

// plotsOf returns the plots of a page, each checked to be well-formed SVG.
func plotsOf(t *testing.T, page string) []string {
	t.Helper()
	svgs := regexp.MustCompile(`(?s)<svg viewBox.*?</svg>`).FindAllString(page, -1)
	for i, s := range svgs {
		if err := parseXML(s); err != nil {
			t.Errorf("plot %d is not well-formed SVG: %v", i, err)
		}
	}
	return svgs
}

// TestWriteBatchSweep builds a sweep page from fixture runs: two series (no
// nemesis, kill-leader) at 3, 5 and 7 members.
func TestWriteBatchSweep(t *testing.T) {
	root := t.TempDir()
	started := time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)
	dir := filepath.Join(root, "sweep", "20261123T110000Z")
	sw := Batch{Kind: KindSweep, Title: "Scale sweep", Command: "faultline sweep --nodes 3,5,7", Started: started}
	for i, nem := range []string{"none", "kill-leader"} {
		for j, n := range []int{3, 5, 7} {
			name := fmt.Sprintf("etcd-%dn-%s", n, nem)
			lat := float64(n) * float64(i+1)
			r := &rundir.Results{Config: rundir.Config{Name: name, Target: "etcd", Version: "v3.5.17", Nodes: n,
				Workload: "register", Nemesis: nem, ReadConsistency: "linearizable"}, Verdict: checker.Valid,
				Stats: checker.Stats{Ops: []checker.OpStats{
					{F: "read", OK: 100, Latency: checker.Percentiles{P50: lat, P99: 3 * lat}},
					{F: "write", OK: 100, Latency: checker.Percentiles{P50: 2 * lat, P99: 5 * lat}},
					{F: checker.All, OK: 200, Throughput: 1000 / float64(n)},
				}}}
			sw.Runs = append(sw.Runs, batchRun(t, dir, r, started.Add(time.Duration(i*3+j)*time.Minute)))
		}
	}
	if err := WriteBatch(dir, sw); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, rundir.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	svgs := plotsOf(t, page)
	if len(svgs) != 3 {
		t.Fatalf("sweep page has %d plots, want read latency, write latency and throughput", len(svgs))
	}
	for i, s := range svgs {
		// Two series, each a line through its three sizes.
		if n := strings.Count(s, "<path"); n < 2 {
			t.Errorf("plot %d draws %d paths", i, n)
		}
	}
	for _, want := range []string{
		"etcd v3.5.17, linearizable reads, nemesis none",
		"etcd v3.5.17, linearizable reads, nemesis kill-leader",
		"faultline sweep --nodes 3,5,7",
		`href="runs/etcd-7n-kill-leader/`,
		"333",   // throughput at 3 members
		"35.00", // write p99 at 7 members without a nemesis: 5 * 7
	} {
		if !strings.Contains(page, want) {
			t.Errorf("sweep page lacks %q", want)
		}
	}
	// Rows are grouped by series and ordered by size.
	if strings.Index(page, "etcd-3n-none") > strings.Index(page, "etcd-7n-none") {
		t.Error("rows not ordered by cluster size")
	}

	var idx bytes.Buffer
	if err := WriteIndex(&idx, root); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(idx.String(), `href="sweep/20261123T110000Z/index.html"`) {
		t.Error("run index does not link the sweep")
	}
	if n := strings.Count(idx.String(), `<span class="pill valid">`); n != 6 {
		t.Errorf("run index lists %d of the sweep's 6 runs", n)
	}
}

// TestWriteBatchNightly: the gate's page has no plots, counts the valid
// runs, names the runs that could not run, and is only as good as its worst.
func TestWriteBatchNightly(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "nightly", "20261123T020000Z")
	started := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	b := Batch{Kind: KindNightly, Title: "Nightly gate", Command: "faultline nightly --matrix ci/nightly.json", Started: started,
		Failed: []string{"kvnode-3n-lease-kill-leader: could not run the test: image build failed"}}
	for i, v := range []checker.Verdict{checker.Valid, checker.Valid} {
		name := fmt.Sprintf("etcd-%dn-register-kill-leader", 3+2*i)
		r := &rundir.Results{Config: rundir.Config{Name: name, Target: "etcd", Nodes: 3 + 2*i, Nemesis: "kill-leader"}, Verdict: v,
			Phases: []rundir.Phase{{Name: rundir.PhaseBoot, Took: rundir.Duration(5 * time.Second)}, {Name: rundir.PhaseTest, Took: rundir.Duration(time.Minute)},
				{Name: rundir.PhaseCheck, Took: rundir.Duration(10 * time.Second)}}}
		b.Runs = append(b.Runs, batchRun(t, dir, r, started.Add(time.Duration(i)*time.Minute)))
	}
	if err := WriteBatch(dir, b); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, rundir.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<div class="verdict unknown">`, // every run valid, but one never ran
		"2 of 2 runs valid", "1 could not run", "image build failed",
		`href="runs/etcd-5n-register-kill-leader/`,
		"Time spent over the runs: boot 10s, test 2m0s, check 20s; overhead (all but the test) 30s, 20% of 2m30s.",
		// These runs recorded no statistics: no throughput, no latency.
		`<td class="num">—</td>
<td class="ops">—</td>`,
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("nightly page lacks %q", want)
		}
	}
	if strings.Contains(string(page), "<svg viewBox") {
		t.Error("nightly page has sweep plots")
	}
}
