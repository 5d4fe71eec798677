package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/rundir"
)

// TestSnapshotCatchUp: with small snapshot settings, a member cut off
// until the leader has compacted past it is sent a snapshot and applies
// it, on both targets, and the run stays valid; a panic armed where a
// follower applies a snapshot fires there, and the member recovers.
func TestSnapshotCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	for _, tc := range []struct {
		target, runtime, nemesis string
		// said is what each window's effect on its member must say; inLog
		// what that member's log must show after the run.
		said, inLog string
	}{
		{"etcd", compose.Docker, "blackhole-until-snapshot", "then let back to be sent a snapshot", "applied snapshot"},
		{"kvnode", compose.Local, "blackhole-until-snapshot", "then let back to be sent a snapshot", "applied snapshot from leader"},
		{"etcd", compose.Docker, "failpoint=raftBeforeApplySnap:panic@follower", "fired: n", "failpoint panic: "},
		{"kvnode", compose.Local, "failpoint=raftBeforeApplySnap:panic@follower", "fired: n", "failpoint panic: "},
	} {
		t.Run(tc.target+"/"+tc.nemesis, func(t *testing.T) {
			if tc.runtime == compose.Docker {
				dockerOrSkip(t)
			}
			test := shortTest(t, tc.target, 26*time.Second)
			test.Config.Runtime, test.Config.Nemesis = tc.runtime, tc.nemesis
			// One window, long enough (11 s at its shortest, with jitter) for
			// the leader to get some 1,200 entries ahead at the 150 to 250 a
			// second the harness adds when the workload stalls.
			test.Config.NemesisInterval, test.Config.NemesisDuration = rundir.Duration(9*time.Second), rundir.Duration(14*time.Second)
			test.Config.MemberFlags = []string{"--snapshot-count=100", "--snapshot-catchup-entries=50"}
			res, dir := run(t, test)
			validWindows(t, res, tc.said)
			for _, w := range res.Faults {
				if log := memberLog(t, dir, w.Nodes[0]); !strings.Contains(log, tc.inLog) {
					t.Errorf("%s's log does not show %q", w.Nodes[0], tc.inLog)
				}
			}
		})
	}
}
