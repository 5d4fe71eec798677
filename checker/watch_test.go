package checker

import (
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

func TestWatchFixtures(t *testing.T) {
	runFixtures(t, "watch", WatchChecker, func(_ *testing.T, ops []history.Op, _ []history.Event, _ string) Result {
		return Watch(t.Context(), &Input{Ops: ops})
	}, nil)
}

func TestWatchSimulated(t *testing.T) {
	ops := simulateWatch(3, 2000, 5, 4)
	if res := Watch(t.Context(), &Input{Ops: ops}); res.Verdict != Valid {
		t.Fatalf("simulated correct watches: %s: %s %q", res.Verdict, res.Summary, res.Anomalies)
	}
	// Drop one event from one response in the middle: a gap.
	for i := len(ops) / 2; i < len(ops); i++ {
		if ops[i].F == WatchRecv && len(ops[i].Complete.WatchEvents) > 0 {
			ops[i].Complete.WatchEvents = nil
			break
		}
	}
	res := Watch(t.Context(), &Input{Ops: ops})
	if res.Verdict != Invalid || !strings.Contains(res.Summary, "missed event") {
		t.Fatalf("dropped event: %s: %s", res.Verdict, res.Summary)
	}
}

func BenchmarkWatch(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		ops := simulateWatch(1, n, 8, 6)
		b.Run(plural(n, "write"), func(b *testing.B) {
			for b.Loop() {
				if res := Watch(b.Context(), &Input{Ops: ops}); res.Verdict != Valid {
					b.Fatalf("%s: %s", res.Verdict, res.Summary)
				}
			}
		})
	}
}

func TestKubernetesFixtures(t *testing.T) {
	runFixtures(t, "kubernetes", KubernetesChecker, func(_ *testing.T, ops []history.Op, _ []history.Event, _ string) Result {
		return Kubernetes(t.Context(), &Input{Ops: ops})
	}, nil)
}

func TestLeaseFixtures(t *testing.T) {
	runFixtures(t, "lease", LeaseChecker, func(_ *testing.T, ops []history.Op, events []history.Event, _ string) Result {
		return Lease(t.Context(), NewInput(events, ops))
	}, nil)
}
