package checker

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

// runFixtures checks every history in testdata/<dir>: a file's name starts
// with the expected verdict (valid- or invalid-); "# expect-anomaly: text"
// requires an anomaly containing text.
func runFixtures(t *testing.T, dir, name string, check func([]history.Op, []history.Event) Result) {
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
			res := check(ops, events)
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
		})
	}
}

// readFixture reads a history file whose lines starting with # are
// comments.
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

func TestWatchFixtures(t *testing.T) {
	runFixtures(t, "watch", WatchChecker, func(ops []history.Op, _ []history.Event) Result { return Watch(ops) })
}

func TestWatchSimulated(t *testing.T) {
	ops := simulateWatch(3, 2000, 5, 4)
	if res := Watch(ops); res.Verdict != Valid {
		t.Fatalf("simulated correct watches: %s: %s %q", res.Verdict, res.Summary, res.Anomalies)
	}
	// Drop one event from one response in the middle: a gap.
	for i := len(ops) / 2; i < len(ops); i++ {
		if ops[i].F == opWatchRecv && len(ops[i].Complete.WatchEvents) > 0 {
			ops[i].Complete.WatchEvents = nil
			break
		}
	}
	res := Watch(ops)
	if res.Verdict != Invalid || !strings.Contains(res.Summary, "missed event") {
		t.Fatalf("dropped event: %s: %s", res.Verdict, res.Summary)
	}
}

func BenchmarkWatch(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		ops := simulateWatch(1, n, 8, 6)
		b.Run(plural(n, "write"), func(b *testing.B) {
			for b.Loop() {
				if res := Watch(ops); res.Verdict != Valid {
					b.Fatalf("%s: %s", res.Verdict, res.Summary)
				}
			}
		})
	}
}

func TestKubernetesFixtures(t *testing.T) {
	runFixtures(t, "kubernetes", KubernetesChecker, func(ops []history.Op, _ []history.Event) Result { return Kubernetes(ops) })
}

func TestLeaseFixtures(t *testing.T) {
	runFixtures(t, "lease", LeaseChecker, func(ops []history.Op, events []history.Event) Result {
		return Lease(ops, history.Faults(events), DefaultLeaseSkew)
	})
}
