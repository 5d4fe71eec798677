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

// BenchmarkKV10PercentInfo checks a generated valid kv history of 20,000
// operations, 10% of them writes of unknown outcome, with the commit log
// a recorder would give (resolve) and without it, with resolution switched
// off (no-resolve). Without, the search is bounded at a minute and its
// verdict is unknown; verdicts are reported as the metric valid (1 or 0).
func BenchmarkKV10PercentInfo(b *testing.B) {
	ops, log := genKVHistoryLog(20_000, 0.10, 1)
	for _, tc := range []struct {
		name string
		in   func() *Input
	}{
		{"resolve", func() *Input { return &Input{Ops: ops, CommitLog: log, Timeout: time.Minute} }},
		{"no-resolve", func() *Input { return &Input{Ops: ops, NoResolve: true, Timeout: time.Minute} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			valid := 0.0
			for b.Loop() {
				res := KV(b.Context(), tc.in())
				if res.Verdict == Invalid {
					b.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
				}
				if res.Verdict == Valid {
					valid = 1
				}
			}
			b.ReportMetric(valid, "valid")
		})
	}
}
