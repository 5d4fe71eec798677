package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

// smallRun copies the small real run of testdata/smallrun into a fresh
// directory and reads it.
func smallRun(t *testing.T) (string, *rundir.Results, []history.Event) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{rundir.HistoryFile, rundir.ResultsFile} {
		b, err := os.ReadFile(filepath.Join("testdata", "smallrun", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := rundir.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	events, err := history.ReadFile(filepath.Join(dir, rundir.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	return dir, r, events
}

// TestTimelineOfRealRun draws the small real run: every operation is a bar
// on its process's lane, from its invocation to its completion, with its
// outcome; the nemesis has the first lane and the fault windows; the page
// is well-formed and refers to nothing outside itself.
func TestTimelineOfRealRun(t *testing.T) {
	dir, r, events := smallRun(t)
	doc := writeReport(t, dir, r, events)
	if !strings.Contains(doc, `<a href="./timeline.html">Timeline</a>`) {
		t.Error("the report does not link the timeline")
	}
	b, err := os.ReadFile(filepath.Join(dir, rundir.TimelineFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if err := wellFormed(page); err != nil {
		t.Fatalf("timeline.html is not well-formed: %v", err)
	}
	for _, bad := range []string{"http://", "https://", " src=", "url(", "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("timeline.html refers outside itself: it contains %q", bad)
		}
	}
	d := embeddedTimeline(t, page)

	ops, err := history.Ops(events)
	if err != nil {
		t.Fatal(err)
	}
	// Lanes: the nemesis, then each process that issued an operation.
	want := []string{nemesisLane}
	var procs []int
	for _, op := range ops {
		if !slices.Contains(procs, int(op.Process)) {
			procs = append(procs, int(op.Process))
		}
	}
	slices.Sort(procs)
	for _, p := range procs {
		want = append(want, fmt.Sprintf("p%d", p))
	}
	if !slices.Equal(d.Lanes, want) {
		t.Errorf("lanes %v, want %v", d.Lanes, want)
	}
	if len(d.Lanes) < 3 {
		t.Fatalf("only %d lanes: the fixture should have several processes", len(d.Lanes))
	}

	n := len(d.Lane)
	for _, col := range []int{len(d.Start), len(d.Stop), len(d.Kind), len(d.Text)} {
		if col != n {
			t.Fatalf("columns of different lengths: %d and %d", n, col)
		}
	}
	// Every operation is drawn once, where and as it happened.
	type bar struct {
		lane        string
		start, stop int64
		kind        int
	}
	drawn := map[bar]int{}
	for i := range n {
		if d.Lane[i] != 0 {
			drawn[bar{d.Lanes[d.Lane[i]], d.Start[i], d.Stop[i], d.Kind[i]}]++
		}
	}
	clientBars := 0
	for _, c := range drawn {
		clientBars += c
	}
	if clientBars != len(ops) {
		t.Errorf("%d bars on process lanes, want one per operation: %d", clientBars, len(ops))
	}
	kinds := map[history.Type]int{history.OK: barOK, history.Fail: barFail, history.Info: barInfo}
	seen := map[int]bool{}
	for _, op := range ops {
		stop := op.Complete.Time
		if op.Pending() {
			stop = 0
			for _, e := range events {
				stop = max(stop, e.Time)
			}
		}
		b := bar{fmt.Sprintf("p%d", op.Process), op.Invoke.Time / 1000, stop / 1000, kinds[op.Type()]}
		if drawn[b] == 0 {
			t.Errorf("operation %s of process %d at %d ns is not drawn as %+v", op.F, op.Process, op.Invoke.Time, b)
			continue
		}
		drawn[b]--
		seen[b.kind] = true
	}
	if !seen[barOK] || !seen[barInfo] {
		t.Errorf("the fixture should have ok and info operations drawn; kinds seen: %v", seen)
	}
	// The two kill-leader windows: shaded, and bars of the nemesis lane.
	if len(d.Faults) != 2 || d.Faults[0].Label != "kill-leader n1" || d.Faults[1].Label != "kill-leader n2" {
		t.Errorf("fault windows %+v, want kill-leader n1 and kill-leader n2", d.Faults)
	}
	faultBars := 0
	for i := range n {
		if d.Lane[i] == 0 && d.Kind[i] == barFault {
			faultBars++
		}
	}
	if faultBars != 2 {
		t.Errorf("%d fault bars on the nemesis lane, want 2", faultBars)
	}
	// Hover text says what the op was and how it ended.
	i := slices.IndexFunc(d.Text, func(s string) bool { return strings.HasPrefix(s, `p3 cas "k1.0" from no value to "3-1"`) })
	if i < 0 || !strings.Contains(d.Text[i], "succeeded true, revision 2, on n2") {
		t.Errorf("no hover text of the first cas, or it lacks its outcome: %q", d.Text[max(i, 0)])
	}
}

// TestTimelineLinksFromAnomalies: an anomaly that names operations links
// them in the timeline.
func TestTimelineLinksFromAnomalies(t *testing.T) {
	dir, r, events := smallRun(t)
	r.Checks = append(r.Checks, checker.Result{Checker: "linearizable-register", Verdict: checker.Invalid, Summary: "key k1 is not linearizable",
		Anomalies: []string{`key k1: read by process 2 at 4.200s returned "w-1", but the longest linearizable prefix (4 of 5 operations) leaves the value "w-2" (write of "w-2" by process 1 at 1.000s)`,
			"no operation named here"}})
	doc := writeReport(t, dir, r, events)
	if want := `<a class="jump" href="timeline.html#t=4.200&amp;p=2&amp;t=1.000&amp;p=1">in the timeline</a>`; !strings.Contains(doc, want) {
		t.Errorf("the anomaly does not link its two operations: want %s", want)
	}
	if n := strings.Count(doc, `class="jump"`); n != 1 {
		t.Errorf("%d jump links, want 1 (the anomaly naming no operation has none)", n)
	}
}

func TestTimelineHref(t *testing.T) {
	for in, want := range map[string]string{
		"kv-get by process 1 on n2 at 3.000s (revision 3): read of a deleted key":                            "timeline.html#t=3.000&p=1",
		"list: informer informer-0.1's list at revision 3 (process 50 at 0.005s) lacks key":                  "timeline.html#t=0.005&p=50",
		"value of key k1 (process 7, invoked at 12.250s)":                                                    "timeline.html#t=12.250&p=7",
		"watch w0 session 0 (process 100, range [\"/watch/\", \"/watch0\") from revision 1) missed an event": "",
		"logs/n1.log:12: panic: boom": "",
	} {
		if got := timelineHref(in); got != want {
			t.Errorf("timelineHref(%q) = %q, want %q", in, got, want)
		}
	}
}

// embeddedTimeline decodes the data the page draws.
func embeddedTimeline(t *testing.T, page string) timelineData {
	t.Helper()
	root, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var data string
	for n := range root.Descendants() {
		if n.Type == html.ElementNode && n.Data == "script" && attr(n, "id") == "data" && n.FirstChild != nil {
			data = n.FirstChild.Data
		}
	}
	if data == "" {
		t.Fatal("timeline.html has no data script")
	}
	var d timelineData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		t.Fatalf("the embedded data does not decode: %v", err)
	}
	return d
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// wellFormed checks that every element is closed, in order: the HTML
// parser itself accepts anything.
func wellFormed(page string) error {
	void := map[string]bool{"meta": true, "link": true, "br": true, "img": true, "input": true, "hr": true, "wbr": true, "source": true}
	z := html.NewTokenizer(strings.NewReader(page))
	var open []string
	for {
		switch z.Next() {
		case html.ErrorToken:
			if errors.Is(z.Err(), io.EOF) {
				if len(open) > 0 {
					return fmt.Errorf("unclosed elements at the end: %v", open)
				}
				return nil
			}
			return z.Err()
		case html.StartTagToken:
			name, _ := z.TagName()
			if !void[string(name)] {
				open = append(open, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(open) == 0 || open[len(open)-1] != string(name) {
				return fmt.Errorf("</%s> closes %v", name, open)
			}
			open = open[:len(open)-1]
		}
	}
}

// Without a history there is nothing to draw: no timeline, and no link to
// one.
func TestNoTimelineWithoutHistory(t *testing.T) {
	dir, r, _ := smallRun(t)
	doc := writeReport(t, dir, r, nil)
	if strings.Contains(doc, rundir.TimelineFile) {
		t.Error("the report links a timeline it has not got")
	}
	if _, err := os.Stat(filepath.Join(dir, rundir.TimelineFile)); err == nil {
		t.Error("timeline.html written without a history")
	}
}

// An operation the history never completed may have happened at any time
// after its invocation: it is drawn as info up to the end of the history.
func TestTimelinePendingOp(t *testing.T) {
	events := sampleHistory()
	ops, err := history.Ops(events)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ops, history.Op.Pending)
	if i < 0 {
		t.Fatal("the sample history has no pending operation")
	}
	d := buildTimeline(sampleResults(t, events, checker.Valid), events, ops, timelineOps)
	p := ops[i]
	j := -1
	for k := range d.Start {
		if d.Start[k] == p.Invoke.Time/1000 && d.Lanes[d.Lane[k]] == fmt.Sprintf("p%d", p.Process) {
			j = k
		}
	}
	if j < 0 || d.Kind[j] != barInfo || d.Stop[j] != d.End || !strings.Contains(d.Text[j], "never completed") {
		t.Errorf("the pending %s of process %d is not drawn as info up to the end (%d): %+v", p.F, p.Process, d.End, j)
	}
}

// BenchmarkTimeline is what the timeline adds to writing a report: laying
// out and encoding 100k register operations on 10 processes.
func BenchmarkTimeline(b *testing.B) {
	var events []history.Event
	const n = 100_000
	for i := range n {
		p := history.Process(i % 10)
		t := int64(i/10) * 5e6
		f := []string{history.Read, history.Write, history.CAS}[i%3]
		events = append(events,
			history.Event{Type: history.Invoke, Process: p, F: f, Time: t, Key: fmt.Sprintf("k%d", i%64), Value: fmt.Sprint(i)},
			history.Event{Type: history.OK, Process: p, F: f, Time: t + 3e6, Key: fmt.Sprintf("k%d", i%64), Revision: int64(i), Member: "n1"})
	}
	ops, err := history.Ops(events)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	r := &rundir.Results{Config: rundir.Config{Name: "bench"}, Verdict: checker.Valid}
	for b.Loop() {
		if err := writeTimeline(dir, r, events, ops); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, rundir.TimelineFile))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/n, "bytes/op-drawn")
}

// A history past the timeline's bound is cut to it: whole up to a time,
// and after it every operation that did not complete ok and those around
// one an anomaly names, which the page says.
func TestTimelineBounded(t *testing.T) {
	var events []history.Event
	const n, limit = 1000, 300
	for i := range n {
		p := history.Process(i % 10)
		at := int64(i) * 10e6 // 10 ms apart: 10 s in all
		done := history.Event{Type: history.OK, Process: p, F: history.Read, Time: at + 5e6}
		if i == 700 {
			done.Type, done.Error = history.Fail, "refused"
		}
		events = append(events, history.Event{Type: history.Invoke, Process: p, F: history.Read, Time: at}, done)
	}
	ops, err := history.Ops(events)
	if err != nil {
		t.Fatal(err)
	}
	r := &rundir.Results{Config: rundir.Config{Name: "bounded"}, Verdict: checker.Invalid,
		Checks: []checker.Result{{Checker: "linearizable-register", Verdict: checker.Invalid,
			Anomalies: []string{"read by process 0 at 5.000s returned a value never written"}}}}
	d := buildTimeline(r, events, ops, limit)
	drawn := map[int64]bool{} // by invocation, in µs
	for k, lane := range d.Lane {
		if lane != 0 {
			drawn[d.Start[k]] = true
		}
	}
	if len(drawn) != limit {
		t.Errorf("%d operations drawn, want the bound, %d", len(drawn), limit)
	}
	// 201 around the anomaly's read (4 to 6 s), the failed read at 7 s,
	// and from the start as many as fit: 98 (to 0.97 s).
	for at, want := range map[int64]bool{0: true, 970_000: true, 980_000: false, 4_000_000: true, 5_000_000: true,
		6_000_000: true, 6_010_000: false, 7_000_000: true, 9_990_000: false} {
		if drawn[at] != want {
			t.Errorf("operation invoked at %d µs drawn %t, want %t", at, drawn[at], want)
		}
	}
	if !strings.Contains(d.Note, "300 of 1000 operations: every one invoked before 0.980 s") || !strings.Contains(d.Note, "within 1 s of one an anomaly names") {
		t.Errorf("the page does not say what it leaves out: %q", d.Note)
	}
	if d := buildTimeline(r, events, ops, n); d.Note != "" {
		t.Errorf("a timeline within its bound says it leaves out: %q", d.Note)
	}
}
