package checker

import (
	"context"
	"runtime"
	"strings"
	"testing"
)

// A search that passes its memory limit stops with an unknown verdict,
// never a valid one, and the summary names the limit.
func TestSearchMemoryLimit(t *testing.T) {
	ops := genKVHistory(2000, 0.05, 1)
	if res := KV(context.Background(), &Input{Ops: ops}); res.Verdict != Valid {
		t.Fatalf("without a limit: %s, %s", res.Verdict, res.Summary)
	}
	// Live heap past the limit, whatever else the test process holds.
	ballast := make([]byte, 8<<20)
	runtime.GC()
	res := KV(context.Background(), &Input{Ops: ops, MemoryLimit: 1 << 20})
	runtime.KeepAlive(ballast)
	if res.Verdict != Unknown || !strings.Contains(res.Summary, "memory limit of 1 MiB") {
		t.Errorf("with a 1 MiB limit: %s, %s; want unknown at the memory limit", res.Verdict, res.Summary)
	}
}

func TestDefaultMemoryLimit(t *testing.T) {
	if total := memTotal(); total > 0 && DefaultMemoryLimit() != total/2 {
		t.Errorf("default limit %d, want half of %d", DefaultMemoryLimit(), total)
	}
	if DefaultMemoryLimit() < 1<<30 {
		t.Errorf("default limit %d: under a GiB", DefaultMemoryLimit())
	}
}
