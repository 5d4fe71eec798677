package checker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// TestKVFixtures checks every history in testdata/kv. Fixtures about
// serializable reads, reads of past revisions and leases have
// "serializable", "past-revision" or "lease" in their name; the others,
// when invalid, must come with porcupine's visualization.
func TestKVFixtures(t *testing.T) {
	runFixtures(t, "kv", KVChecker, func(t *testing.T, ops []history.Op, _ []history.Event, vis string) Result {
		return KV(t.Context(), &Input{Ops: ops, Timeout: time.Minute, Visualize: at(vis)})
	}, func(base string) bool {
		return !strings.Contains(base, "serializable") && !strings.Contains(base, "past-revision") && !strings.Contains(base, "lease")
	})
}

// TestKVUndecided: a search cut short by the caller or by the timeout is
// unknown, never valid.
func TestKVUndecided(t *testing.T) {
	ops := genKVHistory(2000, 0.01, 1)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if res := KV(cancelled, &Input{Ops: ops, Timeout: time.Minute}); res.Verdict != Unknown {
		t.Errorf("cancelled: verdict %s (%s), want unknown", res.Verdict, res.Summary)
	}
	if res := KV(t.Context(), &Input{Ops: ops, Timeout: time.Nanosecond}); res.Verdict != Unknown {
		t.Errorf("1ns timeout: verdict %s (%s), want unknown", res.Verdict, res.Summary)
	}
}

// TestKVGenerated: generated histories of a correct store are valid, and
// breaking one read in them makes them invalid.
func TestKVGenerated(t *testing.T) {
	for seed := range uint64(5) {
		ops := genKVHistory(3000, 0.01, seed)
		res := KV(t.Context(), &Input{Ops: ops, Timeout: time.Minute})
		if res.Verdict != Valid {
			t.Fatalf("seed %d: verdict %s: %s %v", seed, res.Verdict, res.Summary, res.Anomalies)
		}
		// Make the last ok linearizable get with a value return an older
		// value of its key.
		for i := len(ops) - 1; i >= 0; i-- {
			op := &ops[i]
			if op.F == KVGet && op.Type() == history.OK && !op.Invoke.Serializable && len(op.Complete.KVs) == 1 && op.Complete.KVs[0].Version > 1 {
				kv := &op.Complete.KVs[0]
				kv.Value, kv.ModRevision, kv.Version = "never-written", kv.ModRevision-1, kv.Version-1
				break
			}
		}
		if res := KV(t.Context(), &Input{Ops: ops, Timeout: time.Minute}); res.Verdict != Invalid {
			t.Fatalf("seed %d: broken history: verdict %s: %s", seed, res.Verdict, res.Summary)
		}
	}
}
