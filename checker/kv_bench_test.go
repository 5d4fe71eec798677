package checker

import (
	"testing"
	"time"
)

// BenchmarkKV checks a generated valid kv history of 20,000 operations, 1%
// of them writes of unknown outcome and a fifth of the gets serializable
// (the goal: under 60 s). The history is built once, outside the
// timing.
func BenchmarkKV(b *testing.B) {
	ops := genKVHistory(20_000, 0.01, 1)
	b.ResetTimer()
	for b.Loop() {
		if res := KV(b.Context(), &Input{Ops: ops, Timeout: 10 * time.Minute}); res.Verdict != Valid {
			b.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
		}
	}
}

// BenchmarkKV5PercentInfo is BenchmarkKV with 5% of the operations of
// unknown outcome: the search grows quickly with them (at 10% a 20,000-op
// history no longer checks within a minute, and the verdict is unknown).
func BenchmarkKV5PercentInfo(b *testing.B) {
	ops := genKVHistory(20_000, 0.05, 1)
	b.ResetTimer()
	for b.Loop() {
		if res := KV(b.Context(), &Input{Ops: ops, Timeout: 10 * time.Minute}); res.Verdict != Valid {
			b.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
		}
	}
}
