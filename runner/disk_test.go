package runner

import (
	"cmp"
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
	// said, when set, is what the fault must say it did to some member
	// (the windows' effects): one of these.
	said []string
	// by, when set, is the checker that must reach want: the one that
	// shows the acknowledged write lost, not just a cluster that died.
	by string
	// quiet is the nemesis interval, when not the default 4s.
	quiet time.Duration
	// nodes is the cluster's size, when not the default 3.
	nodes int
	// diskMode is the layer's --disk-mode, when not the default ext4.
	diskMode string
}

func (tc diskCase) name() string {
	bug := tc.bug
	if bug == "" {
		bug = "no-bug"
	}
	return strings.Join([]string{tc.target, tc.runtime, bug, tc.workload, tc.nemesis, cmp.Or(tc.diskMode, "ext4")}, "/")
}

func runDiskCases(t *testing.T, cases []diskCase) {
	for _, tc := range cases {
		t.Run(tc.name(), func(t *testing.T) {
			if tc.runtime == compose.Docker {
				dockerOrSkip(t)
			}
			if err := compose.DiskNeeds(tc.runtime); err != nil {
				t.Skipf("skipping: %v", err)
			}
			test := shortTest(t, tc.target, 16*time.Second)
			test.Config.Runtime, test.Config.UnsafeBug = tc.runtime, tc.bug
			test.Config.Nodes = cmp.Or(tc.nodes, test.Config.Nodes)
			test.Config.Workload, test.Config.Nemesis, test.Config.DiskMode = tc.workload, tc.nemesis, tc.diskMode
			test.Config.NemesisInterval, test.Config.NemesisDuration = rundir.Duration(cmp.Or(tc.quiet, 4*time.Second)), rundir.Duration(2*time.Second)
			res, _ := run(t, test)
			if res.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s: %+v", res.Verdict, tc.want, res.Checks)
			}
			for _, c := range res.Checks {
				if c.Verdict == checker.Invalid && len(c.Anomalies) == 0 {
					t.Errorf("%s says invalid without evidence", c.Checker)
				}
			}
			if tc.by != "" && !slices.ContainsFunc(res.Checks, func(c checker.Result) bool { return c.Checker == tc.by && c.Verdict == tc.want }) {
				t.Errorf("%s did not say %s: %+v", tc.by, tc.want, res.Checks)
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
			if len(tc.said) > 0 && !slices.ContainsFunc(effects, func(e string) bool {
				return slices.ContainsFunc(tc.said, func(s string) bool { return strings.Contains(e, s) })
			}) {
				t.Errorf("no member's effect says any of %q: %q", tc.said, effects)
			}
		})
	}
}

// TestPowerLoss: kvnode that never fsyncs its log loses acknowledged
// writes when the power goes, and so does one that never fsyncs the log's
// directory on a strict POSIX disk (on ext4 the log's fdatasync makes its
// name durable too); with the bugs off, kvnode and etcd lose none,
// whichever members lose power, and kvnode none on the strict disk either.
// (etcd is not run strict: it renames a snapshot it received into place
// without fsyncing the directory, and a strict power loss can undo it.)
func TestPowerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	runDiskCases(t, []diskCase{
		// The first loss comes after the layer's 5 s writeback has made the
		// cluster's bootstrap durable: what is lost is the last seconds of
		// acknowledged writes, and the register check must show one.
		{target: "kvnode", runtime: compose.Local, bug: "lost-fsync", workload: "register", nemesis: "power-loss-all", want: checker.Invalid, said: []string{"dropped"}, by: checker.RegisterChecker, quiet: 8 * time.Second},
		{target: "kvnode", runtime: compose.Local, bug: "skip-dir-fsync", workload: "register", nemesis: "power-loss-all", want: checker.Invalid, said: []string{"undid"}, by: checker.RegisterChecker, quiet: 8 * time.Second, diskMode: "strict"},
		{target: "kvnode", runtime: compose.Local, bug: "skip-dir-fsync", workload: "register", nemesis: "power-loss-all", want: checker.Valid, quiet: 8 * time.Second},
		{target: "kvnode", runtime: compose.Local, workload: "register", nemesis: "power-loss-all", want: checker.Valid, diskMode: "strict"},
		{target: "kvnode", runtime: compose.Docker, workload: "kv", nemesis: "power-loss-followers", want: checker.Valid, said: []string{"the leader"}},
		{target: "etcd", runtime: compose.Docker, workload: "register", nemesis: "power-loss-all", want: checker.Valid},
		{target: "etcd", runtime: compose.Docker, workload: "kv", nemesis: "power-loss-followers", want: checker.Valid, said: []string{"the leader"}},
	})
}

// TestDiskDamage: a damaged member of kvnode refuses to start, and is
// replaced; etcd either refuses or repairs; neither ever serves wrong
// data. Slow and failing disks leave both stores correct, and a store that
// ignores a failed fsync loses what it acknowledged.
func TestDiskDamage(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	runDiskCases(t, []diskCase{
		// kvnode checksums every record, and its log's size says where it
		// ends: any damage makes it refuse.
		{target: "kvnode", runtime: compose.Docker, workload: "register", nemesis: "disk-corrupt", want: checker.Valid, said: []string{"exited on its damaged data; replaced"}},
		{target: "kvnode", runtime: compose.Local, workload: "register", nemesis: "disk-truncate", want: checker.Valid, said: []string{"exited on its damaged data; replaced"}},
		// etcd refuses a log record whose checksum fails, falls back from a
		// corrupt snapshot file, and takes a cut log for a torn write, then
		// panics on the leader's first word about what it lost: replaced,
		// or running again and caught up.
		{target: "etcd", runtime: compose.Docker, workload: "register", nemesis: "disk-corrupt,disk-truncate", want: checker.Valid, said: []string{"exited on its damaged data; replaced", "ran again and caught up"}},
		{target: "kvnode", runtime: compose.Local, workload: "register", nemesis: "disk-error=eio@majority,disk-slow=20ms@all", want: checker.Valid, said: []string{"fails with EIO"}},
		// A failed fsync taken for a success: the write is acknowledged,
		// and the power cut before the disk is mended loses it. On one
		// member of one: of three, the other two still hold the write.
		{target: "kvnode", runtime: compose.Local, bug: "ignore-fsync-error", workload: "register", nemesis: "disk-error=eio", want: checker.Invalid, said: []string{"power cut before the heal: dropped"}, by: checker.RegisterChecker, quiet: 8 * time.Second, nodes: 1},
		{target: "kvnode", runtime: compose.Local, workload: "register", nemesis: "disk-error=eio", want: checker.Valid, said: []string{"fails with EIO"}, quiet: 8 * time.Second, nodes: 1},
		{target: "etcd", runtime: compose.Docker, workload: "register", nemesis: "disk-error=enospc,disk-slow=50ms", want: checker.Valid, said: []string{"fails with ENOSPC"}},
	})
}
