package reports

import (
	"cmp"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/checker/elle"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

const rerun = `faultline run --target kvnode --nodes 3 --workload register --nemesis kill-leader --time-limit 20s --rate 50 --name "register kill-leader" --seed 1234`

// sampleHistory is a 20 s register run on 3 nodes with two kill-leader
// windows: a few hundred read/write/cas ops, slow and failing while the
// leader is down, a few timeouts (info) and one op the history never
// completed.

// writeReport writes the run report of r into dir and returns the page.
func writeReport(t *testing.T, dir string, r *rundir.Results, events []history.Event) string {
	t.Helper()
	if err := Write(dir, r, events); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, rundir.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sampleHistory() []history.Event {
	rng := rand.New(rand.NewPCG(1, 2))
	const sec = int64(time.Second)
	windows := [][2]int64{{5 * sec, 8 * sec}, {13 * sec, 16 * sec}}
	inFault := func(t int64) bool {
		for _, w := range windows {
			if t >= w[0] && t < w[1] {
				return true
			}
		}
		return false
	}

	var events []history.Event
	for _, w := range windows {
		events = append(events,
			history.Event{Type: history.Info, Process: history.Nemesis, F: history.Start, Time: w[0], FaultInfo: &history.FaultInfo{Fault: "kill-leader", Nodes: []string{"n2"}}},
			history.Event{Type: history.Info, Process: history.Nemesis, F: history.Stop, Time: w[1], FaultInfo: &history.FaultInfo{Fault: "kill-leader", Nodes: []string{"n2"}}},
			// The cluster is whole again 1.5 s after each heal.
			history.Event{Type: history.Info, Process: history.Nemesis, F: history.Recover, Time: w[1] + 3*sec/2, FaultInfo: &history.FaultInfo{Fault: "kill-leader"}},
			// No leader for 1 s after each kill, then n3 leads.
			history.Event{Type: history.Info, Process: history.Nemesis, F: history.Leader, Time: w[0] + sec/10},
			history.Event{Type: history.Info, Process: history.Nemesis, F: history.Leader, Time: w[0] + sec, FaultInfo: &history.FaultInfo{Term: 7, Nodes: []string{"n3"}}})
	}
	fs := []string{history.Read, history.Write, history.CAS}
	const workers = 5
	next := history.Process(workers)
	for w := range workers {
		p := history.Process(w)
		t := int64(rng.IntN(100)) * int64(time.Millisecond)
		for t < 20*sec {
			f := fs[rng.IntN(len(fs))]
			key := fmt.Sprintf("k%d", rng.IntN(3))
			inv := history.Event{Type: history.Invoke, Process: p, F: f, Time: t, Key: key}
			if f != history.Read {
				inv.Value = fmt.Sprint(rng.IntN(5))
			}
			if f == history.CAS {
				inv.Expect = fmt.Sprint(rng.IntN(5))
			}
			lat := int64((0.4 + rng.ExpFloat64()*2) * float64(time.Millisecond))
			done := history.Event{Process: p, F: f, Key: key, Member: fmt.Sprintf("n%d", 1+rng.IntN(3))}
			switch r := rng.Float64(); {
			case inFault(t) && r < 0.3:
				done.Type, done.Error = history.Info, "context deadline exceeded"
				lat = sec
			case inFault(t) && r < 0.6:
				done.Type, done.Error = history.Fail, "etcdserver: no leader"
				lat = int64(20+rng.IntN(200)) * int64(time.Millisecond)
			case inFault(t):
				done.Type = history.OK
				lat += int64(rng.IntN(400)) * int64(time.Millisecond)
			case r < 0.03:
				done.Type, done.Error = history.Fail, "etcdserver: request timed out"
			default:
				done.Type = history.OK
			}
			done.Time = t + lat
			events = append(events, inv, done)
			if done.Type == history.Info {
				p, next = next, next+1
			}
			t = done.Time + int64(50+rng.IntN(150))*int64(time.Millisecond)
		}
		if w == 0 {
			// The harness stopped before this one completed.
			events = append(events, history.Event{Type: history.Invoke, Process: p, F: history.Write, Time: t, Key: "k0", Value: "9"})
		}
	}
	// The final heal at the end, and the leader the cluster settled on.
	events = append(events,
		history.Event{Type: history.Info, Process: history.Nemesis, F: history.Recover, Time: 20 * sec, FaultInfo: &history.FaultInfo{Fault: history.Final}},
		history.Event{Type: history.Info, Process: history.Nemesis, F: history.Leader, Time: 20*sec + sec/10, FaultInfo: &history.FaultInfo{Term: 7, Nodes: []string{"n3"}}})
	// The history file is ordered by time.
	slices.SortStableFunc(events, func(a, b history.Event) int { return cmp.Compare(a.Time, b.Time) })
	return events
}

func sampleResults(t *testing.T, events []history.Event, verdict checker.Verdict) *rundir.Results {
	t.Helper()
	ops, err := history.Ops(events)
	if err != nil {
		t.Fatal(err)
	}
	r := &rundir.Results{
		Config: rundir.Config{
			Name: "register kill-leader", Target: "kvnode", Nodes: 3, Workload: "register", Nemesis: "kill-leader",
			Workers: 5, Keys: 3, Rate: 50, TimeLimit: rundir.Duration(20 * time.Second),
			OpTimeout: rundir.Duration(time.Second), NemesisInterval: rundir.Duration(5 * time.Second),
			NemesisDuration: rundir.Duration(3 * time.Second), CheckTimeout: rundir.Duration(time.Minute),
			Command: rerun, ReadConsistency: "linearizable", ClientMode: "per-member",
			Members: []rundir.Member{
				{Name: "n1", ClientURL: "http://10.89.0.2:2379"},
				{Name: "n2", ClientURL: "http://10.89.0.3:2379"},
				{Name: "n3", ClientURL: "http://10.89.0.4:2379"},
			},
			ImageReference: "faultline/kvnode:3f2a9c1",
			Seed:           1234,
		},
		Verdict: verdict,
		Checks: []checker.Result{
			{Checker: "linearizability", Verdict: verdict, Summary: "3 keys, 312 operations: linearizable", Seconds: 0.4},
			{Checker: "stats", Verdict: checker.Valid, Summary: "cluster recovered within 1.2 s of each heal"},
		},
		Stats:    checker.Summarise(&checker.Input{Ops: ops}),
		Faults:   history.Faults(events),
		Started:  time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC),
		Duration: rundir.Duration(21500 * time.Millisecond),
		Phases: []rundir.Phase{{Name: "build", Took: rundir.Duration(300 * time.Millisecond)}, {Name: "boot", Took: rundir.Duration(2100 * time.Millisecond)},
			{Name: "test", Took: rundir.Duration(20 * time.Second)}, {Name: "check", Took: rundir.Duration(450 * time.Millisecond)}},
	}
	if verdict == checker.Invalid {
		r.Checks[0].Summary = `key "k1": read of 3 after write of 4 completed`
		r.Checks[0].Anomalies = []string{"k1: read 3 at 7.412 s (process 2)", "k1: write 4 ok at 7.300 s (process 1)"}
		r.Checks[0].Visualization = "porcupine/linearizability.html"
		r.Problems = []string{"n2 did not rejoin within 10s after the last heal"}
		r.Checks = append(r.Checks, checker.Result{Checker: checker.LogsChecker, Verdict: verdict, Summary: "member logs show trouble: n2: 1 panic line",
			Anomalies: []string{"logs/n2.log:12: panic: panic: boom <nil>"}})
		r.Checks = append(r.Checks, checker.Result{Checker: checker.AppendChecker, Verdict: verdict, Summary: "not strict-serializable: G-single ×1 found",
			Anomalies: []string{"G-single: T1 -ww x-> T2 -rw y-> T1: …"}, Visualization: "elle-append-cycles.svg"})
	}
	return r
}

func TestWrite(t *testing.T) {
	events := sampleHistory()
	for _, verdict := range []checker.Verdict{checker.Valid, checker.Invalid, checker.Unknown} {
		t.Run(string(verdict), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, rundir.LogsDir), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"n1.log", "n2.log", "n3 #1.log"} {
				if err := os.WriteFile(filepath.Join(dir, rundir.LogsDir, n), []byte("log line\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r := sampleResults(t, events, verdict)
			if verdict == checker.Invalid {
				writeCycleDrawing(t, filepath.Join(dir, "elle-append-cycles.svg"))
			}
			doc := writeReport(t, dir, r, events)

			mustContain := []string{
				`<div class="verdict ` + string(verdict) + `">` + string(verdict),
				html.EscapeString(rerun),
				`<tr><th>seed</th><td>1234</td></tr>`,
				`<tr><th>check memory</th><td>half this machine&#39;s memory</td></tr>`,
				`<tr><th>time spent</th><td>build 0.3 s, boot 2.1 s, test 20.0 s, check 0.5 s</td></tr>`,
				`aria-label="latency of every operation over time"`,
				`aria-label="throughput over time"`,
				"kill-leader n2",             // fault band label
				`<td class="num">1.5 s</td>`, // time to recover
				`<tr><td class="num">6.0 s</td><td>n3</td><td class="num">7</td></tr>`,
				`<tr><td class="num">13.1 s</td><td>none</td>`,
				`<tr><td class="num">20.1 s</td><td>n3 <span class="muted">(after the final heal)</span></td><td class="num">7</td></tr>`,
				`href="./logs/n1.log"`,
				`href="./logs/n3%20%231.log"`,
			}
			for _, c := range r.Checks {
				mustContain = append(mustContain, html.EscapeString(c.Summary))
			}
			if verdict == checker.Invalid {
				mustContain = append(mustContain,
					`<a href="./porcupine/linearizability.html">`,
					html.EscapeString(r.Checks[0].Anomalies[0]),
					html.EscapeString(r.Problems[0]),
					// The line of a member log links that log.
					`<li><a href="./logs/n2.log">logs/n2.log:12</a>: panic: panic: boom &lt;nil&gt;</li>`,
					// A drawn cycle is shown where its check is listed, and linked.
					`<svg width=`, `T1 · process 0 · ok`, `<a href="./elle-append-cycles.svg">elle-append-cycles.svg</a>`)
			}
			for _, s := range mustContain {
				if !strings.Contains(doc, s) {
					t.Errorf("report lacks %q", s)
				}
			}
			if verdict != checker.Invalid && strings.Contains(doc, "porcupine/") {
				t.Errorf("a %s run links a visualization it does not have", verdict)
			}

			svgs := regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(doc, -1)
			plots := map[string]string{}
			for i, s := range svgs {
				if err := parseXML(s); err != nil {
					t.Errorf("svg %d does not parse: %v\n%.300s", i, err, s)
				}
				if m := regexp.MustCompile(`^<svg[^>]*aria-label="([^"]+)"`).FindStringSubmatch(s); m != nil {
					plots[m[1]] = s
				}
			}
			// Not empty: a glyph per operation, a line per outcome across the buckets.
			if n := strings.Count(plots["latency of every operation over time"], "<path"); n < 500 {
				t.Errorf("latency plot has %d paths, want one per operation", n)
			}
			lines := 0
			for _, d := range regexp.MustCompile(`<path d="([^"]*)"`).FindAllStringSubmatch(plots["throughput over time"], -1) {
				if strings.Count(d[1], "L") >= 19 {
					lines++
				}
			}
			if lines != 3 {
				t.Errorf("throughput plot has %d lines across the run, want 3 (ok, fail, info)", lines)
			}

			// Self-contained: the only URLs left are the members' client
			// URLs, shown as text.
			rest := doc
			for _, m := range r.Config.Members {
				rest = strings.ReplaceAll(rest, m.ClientURL, "")
			}
			for _, bad := range []string{"http://", "https://", "<script", "<link", "src=", "@import", "url("} {
				if strings.Contains(rest, bad) {
					i := strings.Index(rest, bad)
					t.Errorf("report is not self-contained: %q at %q", bad, rest[max(0, i-80):min(len(rest), i+80)])
				}
			}
		})
	}
}

func parseXML(s string) error {
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		if _, err := d.Token(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func TestWriteWithoutHistory(t *testing.T) {
	for name, events := range map[string][]history.Event{
		"no history": nil,
		"malformed": {
			{Type: history.OK, Process: 0, F: history.Read, Time: 5},
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			r := sampleResults(t, nil, checker.Unknown)
			doc := writeReport(t, dir, r, events)
			for _, s := range []string{"No plots: ", "No member logs were saved", html.EscapeString(rerun)} {
				if !strings.Contains(doc, s) {
					t.Errorf("report lacks %q", s)
				}
			}
		})
	}
	if err := Write(t.TempDir(), nil, nil); err == nil {
		t.Error("Write accepted nil results")
	}
}

func TestLinTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		n      int
		want   []string
	}{
		{0, 20.3, 10, []string{"0", "2", "4", "6", "8", "10", "12", "14", "16", "18", "20"}},
		{0, 55, 5, []string{"0", "10", "20", "30", "40", "50"}},
		{0, 1, 5, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
	} {
		var got []string
		for _, tk := range (linTicks{tc.n}).Ticks(tc.lo, tc.hi) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Ticks(%g, %g) labels = %v, want %v", tc.lo, tc.hi, got, tc.want)
		}
	}
}

func TestLogTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []string
	}{
		{1, 10, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}},
		{0.01, 1, []string{"0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"}},
		{0.1, 10000, []string{"0.1", "1", "10", "100", "1000", "10000"}},
	} {
		var got []string
		for _, tk := range (logTicks{}).Ticks(tc.lo, tc.hi) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Ticks(%g, %g) labels = %v, want %v", tc.lo, tc.hi, got, tc.want)
		}
	}
}

// TestConfigRowsSchedule: a run from a schedule file shows its steps where
// a --nemesis run shows the interval and duration.
func TestConfigRowsSchedule(t *testing.T) {
	value := func(rows []row, key string) (string, bool) {
		for _, r := range rows {
			if r.Key == key {
				return r.Value, true
			}
		}
		return "", false
	}
	c := rundir.Config{Nemesis: "kill-leader", NemesisInterval: rundir.Duration(10 * time.Second), NemesisDuration: rundir.Duration(5 * time.Second)}
	if v, _ := value(configRows(c), "nemesis interval"); v != "10s" {
		t.Errorf("nemesis interval %q", v)
	}
	if _, ok := value(configRows(c), "nemesis schedule"); ok {
		t.Error("a --nemesis run shows a schedule")
	}
	c = rundir.Config{Nemesis: "kill-leader,pause-random", ScheduleFile: "ci/schedules/two.json", Schedule: &rundir.Schedule{Jitter: 0.15, Steps: []rundir.Step{
		{Fault: "kill-leader", Quiet: rundir.Duration(10 * time.Second), For: rundir.Duration(5 * time.Second)},
		{Fault: "pause-random", Quiet: rundir.Duration(3 * time.Second), For: rundir.Duration(8 * time.Second)},
	}}}
	rows := configRows(c)
	want := "two.json: 10s quiet, kill-leader for 5s; 3s quiet, pause-random for 8s (once, jitter ±15%)"
	if v, _ := value(rows, "nemesis schedule"); v != want {
		t.Errorf("nemesis schedule %q, want %q", v, want)
	}
	if _, ok := value(rows, "nemesis interval"); ok {
		t.Error("a schedule run shows the unused --nemesis-interval")
	}
	if _, ok := value(rows, "disk mode"); ok {
		t.Error("a run without disk faults shows a disk mode")
	}
	c = rundir.Config{Nemesis: "power-loss-all", DiskMode: "strict"}
	if v, _ := value(configRows(c), "disk mode"); !strings.HasPrefix(v, "strict") {
		t.Errorf("disk mode %q, want strict", v)
	}
}

// writeCycleDrawing writes the drawing package elle makes of a write skew.
func writeCycleDrawing(t *testing.T, path string) {
	t.Helper()
	txns := []elle.Txn{
		{ID: 1, Status: elle.OK, Mops: []elle.Mop{{Kind: elle.Read, Key: "x", List: []int64{}}, {Kind: elle.Append, Key: "y", Value: 1}}},
		{ID: 2, Process: 1, Status: elle.OK, Mops: []elle.Mop{{Kind: elle.Read, Key: "y", List: []int64{}}, {Kind: elle.Append, Key: "x", Value: 1}}},
	}
	rep, err := elle.Check(txns, elle.Options{Workload: elle.ListAppend})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(elle.Drawing(rep.Anomalies, txns, 6)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDrawingOnlyPlain: a drawing is inlined only when it is a plain SVG;
// one that could run script or load anything stays a link.
func TestDrawingOnlyPlain(t *testing.T) {
	dir := t.TempDir()
	const open = `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">`
	for name, body := range map[string]string{
		"plain.svg":  open + `<text>T1</text></svg>`,
		"script.svg": open + `<script>alert(1)</script></svg>`,
		"onload.svg": open + `<rect onload ="x()"/></svg>`,
		"link.svg":   open + `<a href="http://example.com">x</a></svg>`,
		"other.html": open + `</svg>`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(drawing(dir, "plain.svg")); got != `<svg width="10" height="10"><text>T1</text></svg>` {
		t.Errorf("plain drawing inlined as %q", got)
	}
	for _, name := range []string{"script.svg", "onload.svg", "link.svg", "other.html", "missing.svg"} {
		if got := drawing(dir, name); got != "" {
			t.Errorf("%s inlined: %q", name, got)
		}
	}
}

// TestFaultLabelsBounded: a long run's many fault windows get at most
// labelRows rows of labels over each plot; the rest are shaded without one,
// and the plot's note says how many.
func TestFaultLabelsBounded(t *testing.T) {
	const sec = int64(time.Second)
	var ops []history.Op
	for i := range int64(600) {
		inv := &history.Event{Type: history.Invoke, F: history.Read, Time: i * sec / 10}
		ok := &history.Event{Type: history.OK, F: history.Read, Time: i*sec/10 + sec/100}
		ops = append(ops, history.Op{F: history.Read, Invoke: inv, Complete: ok})
	}
	var faults []history.Window
	for i := range int64(30) {
		faults = append(faults, history.Window{Fault: "partition-random", Nodes: []string{"n1"}, Start: 2 * i * sec, Stop: 2*i*sec + sec, Recovered: -1})
	}
	tl := newTimeline(ops, faults)
	for name, draw := range map[string]func(timeline) (plotted, error){"latency": latencyPlot, "throughput": throughputPlot} {
		p, err := draw(tl)
		if err != nil {
			t.Fatal(err)
		}
		labels := strings.Count(string(p.SVG), "partition-random n1")
		m := regexp.MustCompile(`(\d+) of 30 fault windows are shaded without a label`).FindStringSubmatch(p.Note)
		if m == nil {
			t.Fatalf("%s: %d labels and the note %q says none went unlabelled", name, labels, p.Note)
		}
		if unlabelled, _ := strconv.Atoi(m[1]); labels+unlabelled != 30 || labels == 0 {
			t.Errorf("%s: %d labels drawn, the note says %s left out, of 30", name, labels, m[1])
		}
	}
	// Few windows: every one labelled, no note about it.
	p, err := latencyPlot(newTimeline(ops, faults[:3]))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(p.SVG), "partition-random n1"); n != 3 || strings.Contains(p.Note, "without a label") {
		t.Errorf("3 windows: %d labels, note %q", n, p.Note)
	}
}
