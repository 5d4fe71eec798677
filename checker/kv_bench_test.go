package checker

import (
	"bufio"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
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
// verdict may be unknown; verdicts are reported as the metric valid (1 or
// 0). The goal: a verdict within 5 s.
func BenchmarkKV10PercentInfo(b *testing.B) { benchKVInfo(b, 20_000, 0.10) }

// BenchmarkKV20PercentInfo is BenchmarkKV10PercentInfo with 20% of unknown
// outcome; the goal: a verdict within 20 s.
func BenchmarkKV20PercentInfo(b *testing.B) { benchKVInfo(b, 20_000, 0.20) }

// BenchmarkKVLong checks a kv history the size of a 30-minute run, a
// million operations, 10% of unknown outcome, with the commit log; the
// goal: within 2 minutes and 4 GiB. It reports the heap's peak during the
// check (sampled) beside the history's own size, in MiB.
func BenchmarkKVLong(b *testing.B) {
	ops, log := genKVHistoryLog(1_000_000, 0.10, 1)
	held := heapInuse()
	b.ResetTimer()
	peak := heapPeak()
	var in *Input
	for b.Loop() {
		in = &Input{Ops: ops, CommitLog: log, Timeout: 10 * time.Minute, MemoryLimit: 4 << 30}
		if res := KV(b.Context(), in); res.Verdict != Valid {
			b.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
		}
	}
	b.ReportMetric(peak(), "peak-heap-MiB")
	b.ReportMetric(held, "history-MiB")
	// What the check keeps beside the history (its prepared kv history).
	b.ReportMetric(heapInuse()-held, "kept-MiB")
	runtime.KeepAlive(in)
}

// BenchmarkKVWatchLong is BenchmarkKVLong as a run of --workload kv,watch
// makes it: a third of the puts and deletes are the watch workload's, on
// keys of their own, 5% of all operations of unknown outcome, and every
// change is in the commit log twice (two recorders). Those writes hold
// revisions the kv search must account for; its verdict is the metric
// valid (1 or 0: unknown within the 2-minute bound or the 4 GiB limit).
func BenchmarkKVWatchLong(b *testing.B) {
	ops, log := genKVWatchHistoryLog(1_000_000, 0.05, 1, 0.33)
	log.Commits = append(log.Commits, log.Commits...)
	b.ResetTimer()
	peak := heapPeak()
	valid := 0.0
	for b.Loop() {
		res := KV(b.Context(), &Input{Ops: ops, CommitLog: log, Timeout: 2 * time.Minute, MemoryLimit: 4 << 30})
		if res.Verdict == Invalid {
			b.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
		}
		if res.Verdict == Valid {
			valid = 1
		}
	}
	b.ReportMetric(peak(), "peak-heap-MiB")
	b.ReportMetric(valid, "valid")
}

// heapInuse is the heap in use after a collection, in MiB.
func heapInuse() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}

// heapPeak samples the heap in use until the returned function is called,
// which returns the most it saw, in MiB.
func heapPeak() func() float64 {
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		var most uint64
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			most = max(most, ms.HeapInuse)
			select {
			case <-stop:
				done <- most
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() float64 {
		close(stop)
		return float64(<-done) / (1 << 20)
	}
}

func benchKVInfo(b *testing.B, n int, info float64) {
	ops, log := genKVHistoryLog(n, info, 1)
	for _, tc := range []struct {
		name string
		in   func() *Input
	}{
		{"resolve", func() *Input { return &Input{Ops: ops, CommitLog: log, Timeout: time.Minute, MemoryLimit: 4 << 30} }},
		{"no-resolve", func() *Input { return &Input{Ops: ops, NoResolve: true, Timeout: time.Minute, MemoryLimit: 4 << 30} }},
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

// BenchmarkReadLong reads BenchmarkKVLong's history back from a
// history.jsonl and pairs its operations, as a check of a run does first;
// it reports the file's size and the heap the events and operations hold,
// in MiB, to tell what a long run's check spends its memory on.
func BenchmarkReadLong(b *testing.B) {
	ops, _ := genKVHistoryLog(1_000_000, 0.10, 1)
	path := filepath.Join(b.TempDir(), "history.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for _, op := range ops {
		for _, e := range []*history.Event{op.Invoke, op.Complete} {
			if e.Time == math.MaxInt64 {
				continue
			}
			line, err := e.MarshalLine()
			if err != nil {
				b.Fatal(err)
			}
			w.Write(line)
		}
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(path)
	ops = nil
	b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
	b.ResetTimer()
	for b.Loop() {
		before := heapInuse()
		events, err := history.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		ops, err := history.Ops(events)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(heapInuse()-before, "events+ops-MiB")
		runtime.KeepAlive(ops)
		runtime.KeepAlive(events)
	}
}
