package checker

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

// at is an Input.Visualize that writes to path whatever the file.
func at(path string) func(string) string {
	return func(string) string { return path }
}

// update rewrites the golden files from what the checkers say now:
// go test ./checker -update. Review the diff: it is what users will read.
var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt from the checkers' current output")

// fixtureCheck runs a checker on one fixture's history; vis is where it
// may write a visualization.
type fixtureCheck func(t *testing.T, ops []history.Op, events []history.Event, vis string) Result

// runFixtures checks every history in testdata/<dir>. A file's name starts
// with the expected verdict (valid- or invalid-) and names the anomaly;
// lines starting with # are comments, and "# expect-anomaly: text"
// requires an anomaly containing text. When wantVis says so for a file, an
// invalid verdict must come with a visualization; a valid one never does.
func runFixtures(t *testing.T, dir, name string, check fixtureCheck, wantVis func(base string) bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/%s: %v", dir, err)
	}
	var (
		text strings.Builder
		ran  int
	)
	for _, path := range files {
		base := strings.TrimSuffix(filepath.Base(path), ".jsonl")
		want, _, _ := strings.Cut(base, "-")
		t.Run(base, func(t *testing.T) {
			events, ops, anomalies := readFixture(t, path)
			vis := filepath.Join(t.TempDir(), dir+".html")
			res := check(t, ops, events, vis)
			fmt.Fprintf(&text, "== %s\n%s", base, userText(res))
			ran++
			t.Logf("%s: %s", res.Verdict, res.Summary)
			for _, a := range res.Anomalies {
				t.Logf("anomaly: %s", a)
			}
			if res.Verdict != Verdict(want) {
				t.Fatalf("verdict %s (%s), want %s", res.Verdict, res.Summary, want)
			}
			if res.Checker != name {
				t.Errorf("checker %q, want %q", res.Checker, name)
			}
			if res.Verdict == Invalid && len(res.Anomalies) == 0 {
				t.Error("invalid without anomalies")
			}
			for _, a := range anomalies {
				if !slices.ContainsFunc(res.Anomalies, func(got string) bool { return strings.Contains(got, a) }) {
					t.Errorf("no anomaly contains %q", a)
				}
			}
			st, err := os.Stat(vis)
			switch {
			case res.Verdict == Invalid && wantVis != nil && wantVis(base):
				if res.Visualization != filepath.Base(vis) || err != nil || st.Size() == 0 {
					t.Errorf("visualization %q not written: %v", res.Visualization, err)
				}
			case res.Verdict == Valid && (res.Visualization != "" || err == nil):
				t.Error("visualization written for a valid history")
			}
		})
	}
	// A -run that picks some fixtures leaves the golden file unchecked.
	if !t.Failed() && ran == len(files) {
		golden(t, dir, text.String())
	}
}

// userText is what a user reads of a result: its verdict, summary and
// anomalies, one per line.
func userText(res Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", res.Verdict, res.Summary)
	for _, a := range res.Anomalies {
		fmt.Fprintf(&b, "  %s\n", a)
	}
	return b.String()
}

// golden compares got with testdata/golden/<name>.txt, or rewrites that
// file under -update. A change to what the checkers say shows up as a diff
// of that file in review, not only as a verdict that still holds.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run go test ./checker -update to write it", err)
	}
	if got != string(want) {
		t.Errorf("what the checkers say differs from %s (go test ./checker -update rewrites it; review the diff):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines of want missing from got (-) and the lines of
// got not in want (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}

// readFixture reads a history file whose lines starting with # are
// comments, and the anomalies those comments expect.
func readFixture(t *testing.T, path string) ([]history.Event, []history.Op, []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines, anomalies []string
	for _, line := range strings.Split(string(b), "\n") {
		if c, ok := strings.CutPrefix(line, "#"); ok {
			if a, ok := strings.CutPrefix(strings.TrimSpace(c), "expect-anomaly:"); ok {
				anomalies = append(anomalies, strings.TrimSpace(a))
			}
			continue
		}
		lines = append(lines, line)
	}
	events, err := history.Decode(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ops, err := history.Ops(events)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return events, ops, anomalies
}
