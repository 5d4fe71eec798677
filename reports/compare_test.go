package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

// compareRun stores a run of the kv workload with the given read mode,
// made of events, as a comparison's run.
func compareRun(t *testing.T, dir, mode string, events []history.Event) string {
	t.Helper()
	run, err := rundir.NewDir(filepath.Join(dir, "runs"), "compare-"+mode, time.Date(2026, 11, 23, 12, len(mode), 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(run, rundir.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		line, _ := e.MarshalLine()
		f.Write(line)
	}
	f.Close()
	ops, err := history.Ops(events)
	if err != nil {
		t.Fatal(err)
	}
	r := &rundir.Results{Config: rundir.Config{Name: "compare-" + mode, Target: "etcd", Nodes: 3, Workload: "kv",
		Nemesis: "partition-random", ReadConsistency: mode, ClientMode: "pinned"}, Verdict: checker.Valid,
		Checks: []checker.Result{{Checker: "linearizable-kv", Verdict: checker.Valid, Summary: "fine"}},
		Stats:  checker.Summarise(&checker.Input{Ops: ops})}
	if err := rundir.Write(run, r); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(dir, run)
	return rel
}

// partitionHistories are the same test with linearizable and with
// serializable reads: two writes, then under a partition of n2 a read on
// n2 (serializable: the first write, one revision stale; linearizable: a
// timeout) and a fresh read on n1, then a read after the heal.
func partitionHistories() (lin, ser []history.Event) {
	s := int64(time.Second)
	key := "/kv/k1"
	put := func(p history.Process, at int64, v string, rev int64) []history.Event {
		return []history.Event{
			{Type: history.Invoke, Process: p, F: "kv-put", Time: at, Key: key, Value: v},
			{Type: history.OK, Process: p, F: "kv-put", Time: at + s/10, Key: key, Revision: rev, Member: "n1"},
		}
	}
	get := func(p history.Process, at int64, serializable bool, out history.Event) []history.Event {
		f := "kv-get"
		if serializable {
			f = "kv-get-serializable"
		}
		out.Process, out.F, out.Time, out.Key, out.Serializable = p, f, at+s/10, key, serializable
		return []history.Event{{Type: history.Invoke, Process: p, F: f, Time: at, Key: key, Serializable: serializable}, out}
	}
	fresh := history.Event{Type: history.OK, Revision: 3, Member: "n1",
		KVs: []history.KV{{Key: key, Value: "v2", CreateRevision: 2, ModRevision: 3, Version: 2}}}
	stale := history.Event{Type: history.OK, Revision: 2, Member: "n2",
		KVs: []history.KV{{Key: key, Value: "v1", CreateRevision: 2, ModRevision: 2, Version: 1}}}
	timeout := history.Event{Type: history.Info, Error: "context deadline exceeded"}

	for _, h := range []*[]history.Event{&lin, &ser} {
		*h = append(*h, put(0, 0, "v1", 2)...)
		*h = append(*h, put(0, s, "v2", 3)...)
		*h = append(*h, history.Event{Type: history.Info, Process: history.Nemesis, F: history.Start, Time: 2 * s, FaultInfo: &history.FaultInfo{Fault: "partition-random", Nodes: []string{"n2"}}})
	}
	lin = append(lin, get(1, 5*s/2, false, timeout)...)
	lin = append(lin, get(2, 3*s, false, fresh)...)
	ser = append(ser, get(1, 5*s/2, true, stale)...)
	ser = append(ser, get(2, 3*s, true, fresh)...)
	for _, h := range []*[]history.Event{&lin, &ser} {
		*h = append(*h, history.Event{Type: history.Info, Process: history.Nemesis, F: history.Stop, Time: 4 * s, FaultInfo: &history.FaultInfo{Fault: "partition-random"}})
		*h = append(*h, get(3, 5*s, false, fresh)...)
	}
	return lin, ser
}

// renderCompare renders the comparison of a linearizable and a
// serializable run made of these histories.
func renderCompare(t *testing.T, lin, ser []history.Event) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "compare", "x")
	b := Batch{Kind: KindCompare, Title: "Read modes compared", Command: "faultline compare", Started: time.Now(),
		Runs: []string{compareRun(t, dir, "linearizable", lin), compareRun(t, dir, "serializable", ser)}}
	if err := WriteBatch(dir, b); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, rundir.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	return page
}

// TestWriteCompare sets the two modes side by side.
func TestWriteCompare(t *testing.T) {
	lin, ser := partitionHistories()
	page := renderCompare(t, lin, ser)
	// Each row: its heading, then the linearizable and serializable cells.
	for _, row := range [][3]string{
		{"reads that succeeded during faults", "1 of 2 (50.0%)", "2 of 2 (100.0%)"},
		{"reads that succeeded outside faults", "1 of 1 (100.0%)", "1 of 1 (100.0%)"},
		{"stale serializable reads", "—", "1 of 2 (50.0%)"},
		{"revisions behind p50 / p99 / max", "—", "1 / 1 / 1"},
		// Two reads each in the partition; the serializable run's are counted as its reads.
		{"reads ok / fail / info", "2 / 0 / 1", "2 / 0 / 0"},
	} {
		want := "<tr><th>" + row[0] + "</th><td class=\"num\">" + row[1] + "</td><td class=\"num\">" + row[2] + "</td></tr>"
		if !strings.Contains(string(page), want) {
			t.Errorf("comparison page lacks the row %s", want)
		}
	}
	for _, want := range []string{"linearizable reads</a>", "serializable reads</a>", "What the modes trade"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("comparison page lacks %q", want)
		}
	}
}

// TestReportStaleness: a run's own report shows how stale its serializable
// reads were, per member.
func TestReportStaleness(t *testing.T) {
	_, ser := partitionHistories()
	dir := filepath.Join(t.TempDir(), "x")
	run := filepath.Join(dir, compareRun(t, dir, "serializable", ser))
	r, err := rundir.Read(run)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(run, r, ser); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(run, rundir.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Serializable reads: how stale",
		`aria-label="serializable reads: revisions behind"`,
		`aria-label="serializable reads: milliseconds behind"`,
		"<tr><td>n2</td><td class=\"num\">1</td><td class=\"num\">1</td>",
		"<tr><td>n1</td><td class=\"num\">1</td><td class=\"num\">0</td>",
		"<tr><td>all</td><td class=\"num\">2</td><td class=\"num\">1</td>",
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
