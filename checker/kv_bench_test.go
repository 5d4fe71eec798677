package checker

import (
	"testing"
	"time"
)

// BenchmarkKV checks a generated valid kv history of 20,000 operations, 1%
// of the writes with unknown outcome and a fifth of the reads serializable
// (the goal: under 60 s). The history is built once, outside the
// timing.
func BenchmarkKV(b *testing.B) {
	ops := genKVHistory(20_000, 0.01, 1)
	b.ResetTimer()
	for b.Loop() {
		if res := KV(b.Context(), ops, 10*time.Minute, ""); res.Verdict != Valid {
			b.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
		}
	}
}
