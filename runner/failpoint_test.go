package runner

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

// A failpoint armed on the leader fires, on both targets: a panic before
// the log write crashes it, it is restarted on heal and the cluster
// recovers, valid; a sleep there makes the writes of its windows wait.
// Each window says that it fired, or that it did not.
func TestFailpoint(t *testing.T) {
	for _, tc := range []struct {
		target, runtime, nemesis, said string
		slow                           bool
	}{
		{"etcd", compose.Docker, "failpoint=raftBeforeSave:panic@leader", "fired: n", false},
		{"kvnode", compose.Local, "failpoint=raftBeforeSave:panic@leader", "fired: n", false},
		{"etcd", compose.Docker, "failpoint=raftBeforeSave:sleep(400ms)@leader", "times in", true},
		{"kvnode", compose.Local, "failpoint=raftBeforeSave:sleep(400ms)@leader", "times in", true},
		// A follower never sends as a leader: the window says so.
		{"kvnode", compose.Local, "failpoint=raftBeforeLeaderSend:panic@follower", "never fired", false},
	} {
		t.Run(tc.target+"/"+tc.runtime+"/"+tc.nemesis, func(t *testing.T) {
			if tc.runtime == compose.Docker {
				dockerOrSkip(t)
			}
			test := shortTest(t, tc.target, 16*time.Second)
			test.Config.Runtime, test.Config.Nemesis = tc.runtime, tc.nemesis
			test.Config.NemesisInterval, test.Config.NemesisDuration = rundir.Duration(4*time.Second), rundir.Duration(3*time.Second)
			res, dir := run(t, test)
			validWindows(t, res, tc.said)
			if tc.slow {
				in, out := writeLatencies(t, readHistory(t, dir), res.Faults)
				t.Logf("writes took a median %v in the windows, %v outside", in, out)
				if in < 300*time.Millisecond || in < 4*out {
					t.Errorf("writes took a median %v in the windows and %v outside, want at least 300ms and 4 times as long", in, out)
				}
			}
		})
	}
}

// validWindows asserts that a run was valid, had fault windows, each of
// which says said of the member it hit, and that the cluster recovered
// from each but the last (the final phase checks that one).
func validWindows(t *testing.T, res *rundir.Results, said string) {
	t.Helper()
	if res.Verdict != checker.Valid {
		t.Fatalf("verdict %s, want valid: %+v", res.Verdict, res.Checks)
	}
	if len(res.Faults) == 0 {
		t.Fatal("no fault window in the run")
	}
	for _, w := range res.Faults {
		if got := w.Effects[w.Nodes[0]]; !strings.Contains(got, said) {
			t.Errorf("window at %.1fs on %v says %q, want it to say %q", float64(w.Start)/1e9, w.Nodes, got, said)
		}
		if w.Recovered < 0 && w.Stop < res.Faults[len(res.Faults)-1].Stop {
			t.Errorf("the cluster did not recover from the window at %.1fs", float64(w.Start)/1e9)
		}
	}
}

// writeLatencies are the median latencies of the ok writes invoked well
// inside the fault windows (from a second in, the sleep armed and the
// writes before it done), wherever the heal finds them: on a loaded
// machine few writes both start and end inside, and one the heal ends was
// still slowed; and of those outside every window.
func writeLatencies(t *testing.T, events []history.Event, ws []history.Window) (in, out time.Duration) {
	ops, err := history.Ops(events)
	if err != nil {
		t.Fatal(err)
	}
	var ins, outs []int64
	for _, o := range ops {
		if o.Type() != history.OK || o.F != history.Write {
			continue
		}
		at := o.Invoke.Time
		inside := slices.ContainsFunc(ws, func(w history.Window) bool { return at > w.Start+int64(time.Second) && at < w.Stop })
		near := slices.ContainsFunc(ws, func(w history.Window) bool { return o.Complete.Time > w.Start && at < w.Stop+int64(2*time.Second) })
		switch {
		case inside:
			ins = append(ins, o.Latency())
		case !near:
			outs = append(outs, o.Latency())
		}
	}
	if len(ins) == 0 || len(outs) == 0 {
		t.Fatalf("%d writes inside the windows and %d outside: too few to compare", len(ins), len(outs))
	}
	median := func(xs []int64) time.Duration { slices.Sort(xs); return time.Duration(xs[len(xs)/2]) }
	return median(ins), median(outs)
}
