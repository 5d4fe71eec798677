package checker

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

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
	for _, path := range files {
		base := strings.TrimSuffix(filepath.Base(path), ".jsonl")
		want, _, _ := strings.Cut(base, "-")
		t.Run(base, func(t *testing.T) {
			events, ops, anomalies := readFixture(t, path)
			vis := filepath.Join(t.TempDir(), dir+".html")
			res := check(t, ops, events, vis)
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
