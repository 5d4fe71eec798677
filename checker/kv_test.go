package checker

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// TestKVFixtures checks every history in testdata/kv. A file's name starts
// with the expected verdict (valid- or invalid-) and names the anomaly;
// lines starting with # are comments, and "# expect-anomaly: text"
// requires an anomaly containing text. Fixtures about serializable reads
// and reads of past revisions have "serializable" or "past-revision" in
// their name; the others, when invalid, must come with porcupine's
// visualization.
func TestKVFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/kv/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".jsonl")
		want, _, _ := strings.Cut(name, "-")
		t.Run(name, func(t *testing.T) {
			ops, anomalies := readKVFixture(t, path)
			vis := filepath.Join(t.TempDir(), "kv.html")
			res := KV(t.Context(), ops, time.Minute, vis)
			t.Logf("%s: %s", res.Verdict, res.Summary)
			for _, a := range res.Anomalies {
				t.Logf("anomaly: %s", a)
			}
			if res.Verdict != Verdict(want) {
				t.Fatalf("verdict %s (%s), want %s", res.Verdict, res.Summary, want)
			}
			if res.Checker != KVChecker {
				t.Errorf("checker %q, want %q", res.Checker, KVChecker)
			}
			for _, a := range anomalies {
				if !slices.ContainsFunc(res.Anomalies, func(got string) bool { return strings.Contains(got, a) }) {
					t.Errorf("no anomaly contains %q", a)
				}
			}
			_, err := os.Stat(vis)
			switch {
			case res.Verdict == Invalid && len(res.Anomalies) == 0:
				t.Error("invalid without anomalies")
			case res.Verdict == Invalid && !strings.Contains(name, "serializable") && !strings.Contains(name, "past-revision"):
				if res.Visualization != "kv.html" || err != nil {
					t.Errorf("visualization %q not written: %v", res.Visualization, err)
				}
			case res.Verdict == Valid && (res.Visualization != "" || err == nil):
				t.Error("visualization written for a valid history")
			}
		})
	}
}

func readKVFixture(t *testing.T, path string) ([]history.Op, []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events, anomalies []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if c, ok := strings.CutPrefix(line, "#"); ok {
			if a, ok := strings.CutPrefix(strings.TrimSpace(c), "expect-anomaly:"); ok {
				anomalies = append(anomalies, strings.TrimSpace(a))
			}
			continue
		}
		events = append(events, line)
	}
	evs, err := history.Decode(strings.NewReader(strings.Join(events, "\n")))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ops, err := history.Ops(evs)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ops, anomalies
}

// TestKVUndecided: a search cut short by the caller or by the timeout is
// unknown, never valid.
func TestKVUndecided(t *testing.T) {
	ops := genKVHistory(2000, 0.01, 1)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if res := KV(cancelled, ops, time.Minute, ""); res.Verdict != Unknown {
		t.Errorf("cancelled: verdict %s (%s), want unknown", res.Verdict, res.Summary)
	}
	if res := KV(t.Context(), ops, time.Nanosecond, ""); res.Verdict != Unknown {
		t.Errorf("1ns timeout: verdict %s (%s), want unknown", res.Verdict, res.Summary)
	}
}

// TestKVGenerated: generated histories of a correct store are valid, and
// breaking one read in them makes them invalid.
func TestKVGenerated(t *testing.T) {
	for seed := range uint64(5) {
		ops := genKVHistory(3000, 0.01, seed)
		res := KV(t.Context(), ops, time.Minute, "")
		if res.Verdict != Valid {
			t.Fatalf("seed %d: verdict %s: %s %v", seed, res.Verdict, res.Summary, res.Anomalies)
		}
		// Make the last ok linearizable get with a value return an older
		// value of its key.
		for i := len(ops) - 1; i >= 0; i-- {
			op := &ops[i]
			if op.F == kvGet && op.Type() == history.OK && !op.Invoke.Serializable && len(op.Complete.KVs) == 1 && op.Complete.KVs[0].Version > 1 {
				kv := &op.Complete.KVs[0]
				kv.Value, kv.ModRevision, kv.Version = "never-written", kv.ModRevision-1, kv.Version-1
				break
			}
		}
		if res := KV(t.Context(), ops, time.Minute, ""); res.Verdict != Invalid {
			t.Fatalf("seed %d: broken history: verdict %s: %s", seed, res.Verdict, res.Summary)
		}
	}
}
