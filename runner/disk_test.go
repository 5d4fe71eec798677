package runner

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/rundir"
)

// diskCase is one short run under a disk fault, and what it must come to.
type diskCase struct {
	target, runtime, bug, workload, nemesis string
	want                                    checker.Verdict
	// said, when set, must be in what the fault says it did to some member
	// (the windows' effects).
	said string
}

func (tc diskCase) name() string {
	bug := tc.bug
	if bug == "" {
		bug = "no-bug"
	}
	return strings.Join([]string{tc.target, tc.runtime, bug, tc.workload, tc.nemesis}, "/")
}

func runDiskCases(t *testing.T, cases []diskCase) {
	for _, tc := range cases {
		t.Run(tc.name(), func(t *testing.T) {
			if tc.runtime == compose.Docker {
				dockerOrSkip(t)
			}
			test := shortTest(t, tc.target, 16*time.Second)
			test.Config.Runtime, test.Config.UnsafeBug = tc.runtime, tc.bug
			test.Config.Workload, test.Config.Nemesis = tc.workload, tc.nemesis
			test.Config.NemesisInterval, test.Config.NemesisDuration = rundir.Duration(4*time.Second), rundir.Duration(2*time.Second)
			res, _ := run(t, test)
			if res.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s: %+v", res.Verdict, tc.want, res.Checks)
			}
			for _, c := range res.Checks {
				if c.Verdict == checker.Invalid && len(c.Anomalies) == 0 {
					t.Errorf("%s says invalid without evidence", c.Checker)
				}
			}
			var effects []string
			for _, w := range res.Faults {
				if len(w.Effects) == 0 {
					t.Errorf("window %s at %.1fs says nothing of what it did", w.Fault, float64(w.Start)/1e9)
				}
				for _, m := range w.Nodes {
					effects = append(effects, m+": "+w.Effects[m])
				}
			}
			if len(res.Faults) == 0 {
				t.Fatal("no fault window in the run")
			}
			if tc.said != "" && !slices.ContainsFunc(effects, func(e string) bool { return strings.Contains(e, tc.said) }) {
				t.Errorf("no member's effect says %q: %q", tc.said, effects)
			}
		})
	}
}

// TestPowerLoss: kvnode that never fsyncs its log loses acknowledged
// writes when the power goes; with the bug off, kvnode and etcd lose none,
// whichever members lose power.
func TestPowerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	runDiskCases(t, []diskCase{
		{"kvnode", compose.Local, "lost-fsync", "register", "power-loss-all", checker.Invalid, "dropped"},
		{"kvnode", compose.Local, "", "register", "power-loss-all", checker.Valid, ""},
		{"kvnode", compose.Docker, "", "kv", "power-loss-followers", checker.Valid, "the leader"},
		{"etcd", compose.Docker, "", "register", "power-loss-all", checker.Valid, "dropped"},
		{"etcd", compose.Docker, "", "kv", "power-loss-followers", checker.Valid, "the leader"},
	})
}

// TestDiskDamage: a damaged member of kvnode refuses to start, and is
// replaced; etcd either refuses or repairs; neither ever serves wrong
// data. Slow and failing disks leave both stores correct.
func TestDiskDamage(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	runDiskCases(t, []diskCase{
		{"kvnode", compose.Docker, "", "register", "disk-corrupt", checker.Valid, "refused to start; replaced"},
		{"kvnode", compose.Local, "", "register", "disk-truncate", checker.Valid, "refused to start; replaced"},
		{"etcd", compose.Docker, "", "register", "disk-corrupt", checker.Valid, "flipped bit"},
		{"etcd", compose.Docker, "", "register", "disk-truncate", checker.Valid, "cut member/wal/"},
		{"kvnode", compose.Local, "", "register", "disk-error=eio,disk-slow", checker.Valid, "fails with EIO"},
		{"etcd", compose.Docker, "", "register", "disk-error=enospc,disk-slow=50ms", checker.Valid, "fails with ENOSPC"},
	})
}
