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

// gateNight writes one night's gate under root/nightly: a run per scenario
// with its verdict and p99, then the gate's page.
func gateNight(t *testing.T, root string, started time.Time, shard string, runs map[string]checker.Verdict) string {
	t.Helper()
	dir := filepath.Join(root, "nightly", started.Format("20060102T150405Z"))
	b := Batch{Kind: KindNightly, Title: "Nightly gate", Command: "faultline nightly", Started: started, Shard: shard}
	for name, v := range runs {
		parts := strings.SplitN(name, "-", 4) // target, size, workload, nemesis
		p99 := float64(10 + started.Day())
		r := &rundir.Results{Config: rundir.Config{Name: name, Target: parts[0], Nodes: 3, Workload: parts[2], Nemesis: parts[3]},
			Verdict: v, Started: started, Stats: checker.Stats{Ops: []checker.OpStats{{F: checker.All, OK: 100, Latency: checker.Percentiles{P50: 1, P99: p99}}}}}
		b.Runs = append(b.Runs, batchRun(t, dir, r, started))
	}
	if err := WriteBatch(dir, b); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestGateHistory: the third night's gate page shows each scenario's
// verdict on every night, the second night's failure as an invalid cell
// that links to that night's run, a scenario added on the second night as
// not run on the first, and a p99 trend per scenario group. A shard's
// folder is part of a night, not one, and a gate from before gate.json was
// kept still counts.
func TestGateHistory(t *testing.T) {
	root := t.TempDir()
	day := func(d int) time.Time { return time.Date(2026, 11, d, 2, 0, 0, 0, time.UTC) }
	const reg, etcdReg, lease = "kvnode-3n-register-kill-leader", "etcd-3n-register-kill-leader", "kvnode-3n-lease-kill-random"
	valid, invalid := checker.Valid, checker.Invalid
	first := gateNight(t, root, day(21), "", map[string]checker.Verdict{reg: valid, etcdReg: valid})
	gateNight(t, root, day(22), "", map[string]checker.Verdict{reg: invalid, etcdReg: valid, lease: valid})
	gateNight(t, root, day(22).Add(time.Hour), "1/2", map[string]checker.Verdict{reg: invalid})
	// The first night's gate is older than gate summaries.
	if err := os.Remove(filepath.Join(first, GateFile)); err != nil {
		t.Fatal(err)
	}
	third := gateNight(t, root, day(23), "", map[string]checker.Verdict{reg: valid, etcdReg: valid, lease: valid})

	g, ok, err := readGate(third)
	if err != nil || !ok || g.Verdict != valid || len(g.Scenarios) != 3 {
		t.Fatalf("the third night's %s: %+v, %v, %v", GateFile, g, ok, err)
	}
	b, err := os.ReadFile(filepath.Join(third, rundir.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	cells := func(name string) [][]string {
		i := strings.Index(page, ">"+name+"<")
		if i < 0 {
			t.Fatalf("no row for %s", name)
		}
		row := page[i : i+strings.Index(page[i:], "</tr>")]
		return regexp.MustCompile(`class="night (\w+)"(?: href="([^"]*)")?`).FindAllStringSubmatch(row, -1)
	}
	link := func(night int, name string) string {
		return fmt.Sprintf("../%s/runs/%s/%s/index.html", day(night).Format("20060102T150405Z"), name, day(night).Format("20060102T150405Z"))
	}
	for _, tc := range []struct {
		name  string
		want  []string // verdict class per night
		hrefs []string // link per night, "" for none
	}{
		{reg, []string{"valid", "invalid", "valid"}, []string{link(21, reg), link(22, reg), "runs/" + reg + "/20261123T020000Z/index.html"}},
		{etcdReg, []string{"valid", "valid", "valid"}, []string{link(21, etcdReg), link(22, etcdReg), "runs/" + etcdReg + "/20261123T020000Z/index.html"}},
		{lease, []string{"none", "valid", "valid"}, []string{"", link(22, lease), "runs/" + lease + "/20261123T020000Z/index.html"}},
	} {
		got := cells(tc.name)
		if len(got) != 3 {
			t.Errorf("%s: %d nights shown, want 3 (the shard is no night): %q", tc.name, len(got), got)
			continue
		}
		for k, c := range got {
			if c[1] != tc.want[k] || c[2] != tc.hrefs[k] {
				t.Errorf("%s, night %d: cell %s linking %q, want %s linking %q", tc.name, k+1, c[1], c[2], tc.want[k], tc.hrefs[k])
			}
			if c[2] != "" {
				// The fixture runs have no report; their results are beside where it goes.
				if _, err := os.Stat(filepath.Join(third, filepath.Dir(filepath.FromSlash(c[2])), rundir.ResultsFile)); err != nil {
					t.Errorf("%s, night %d links a run that is not there: %v", tc.name, k+1, err)
				}
			}
		}
	}
	if svgs := plotsOf(t, page); len(svgs) != 2 {
		t.Fatalf("gate page has %d plots, want a p99 trend for each of its 2 scenario groups", len(svgs))
	}
	for _, want := range []string{"p99 latency over the nights: register under kill-leader", "p99 latency over the nights: lease under kill-random",
		"etcd, 3 members", "kvnode, 3 members", "last 3 nights", ">11-22<"} {
		if !strings.Contains(page, want) {
			t.Errorf("gate page lacks %q", want)
		}
	}

	// The run index lists the gates newest first, each with its verdict.
	var idx bytes.Buffer
	if err := WriteIndex(&idx, root); err != nil {
		t.Fatal(err)
	}
	pages := idx.String()[:strings.Index(idx.String(), `<table id="runs">`)]
	got := regexp.MustCompile(`href="nightly/(\w+)/index.html".*?<td>Nightly gate[^<]*</td><td class="num">\d+</td><td><span class="pill (\w+)">`).FindAllStringSubmatch(pages, -1)
	var order []string
	for _, g := range got {
		order = append(order, g[1]+" "+g[2])
	}
	want := []string{"20261123T020000Z valid", "20261122T030000Z invalid", "20261122T020000Z invalid", "20261121T020000Z valid"}
	if strings.Join(order, ", ") != strings.Join(want, ", ") {
		t.Errorf("the run index lists the gates as %q, want %q, newest first", order, want)
	}
}
