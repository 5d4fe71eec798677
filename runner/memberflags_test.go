package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/rundir"
)

// memberLog reads one member's saved log.
func memberLog(t *testing.T, dir, member string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rundir.LogsDir, member+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMemberFlags: --member-flag reaches every member and changes what it
// does. With --snapshot-count=50 kvnode snapshots within seconds (its
// default waits for 100000 entries), also after the nemesis killed and
// restarted it; etcd prints the count in its config and snapshots too.
func TestMemberFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	const saved = "saved snapshot and compacted the log"
	t.Run("kvnode-local", func(t *testing.T) {
		test := localTest(t, 15*time.Second, "kill-random")
		test.Config.MemberFlags = []string{"--snapshot-count=50", "--snapshot-catchup-entries=20"}
		res, dir := run(t, test)
		if res.Verdict != checker.Valid {
			t.Fatalf("verdict %s: %+v", res.Verdict, res.Checks)
		}
		if strings.Join(res.Config.MemberFlags, " ") != "--snapshot-count=50 --snapshot-catchup-entries=20" {
			t.Errorf("results.json has member flags %q", res.Config.MemberFlags)
		}
		restarted := 0
		for _, m := range res.Config.Members {
			log := memberLog(t, dir, m.Name)
			if !strings.Contains(log, saved) {
				t.Errorf("%s saved no snapshot in 15 s with --snapshot-count=50", m.Name)
			}
			// The flags outlive a restart: snapshots go on after it. The
			// first restart counts: the last may be the final heal's, after
			// the workload ended.
			if i := strings.Index(log, "restarted raft member from disk"); i >= 0 && strings.Contains(log[i:], saved) {
				restarted++
			}
		}
		if restarted == 0 {
			t.Error("no member killed and restarted saved a snapshot after its restart")
		}
	})
	t.Run("etcd", func(t *testing.T) {
		dockerOrSkip(t)
		test := shortTest(t, "etcd", 15*time.Second)
		test.Config.Nemesis = "kill-random"
		test.Config.MemberFlags = []string{"--snapshot-count=100", "--snapshot-catchup-entries=20"}
		res, dir := run(t, test)
		if res.Verdict != checker.Valid {
			t.Fatalf("verdict %s: %+v", res.Verdict, res.Checks)
		}
		killed := map[string]int{}
		for _, w := range res.Faults {
			for _, n := range w.Nodes {
				killed[n]++
			}
		}
		restarts := 0
		for _, m := range res.Config.Members {
			log := memberLog(t, dir, m.Name)
			if !strings.Contains(log, "triggering snapshot") {
				t.Errorf("%s took no snapshot in 15 s with --snapshot-count=100", m.Name)
			}
			// etcd prints its config at every start: each start, restarts
			// too, had the flag.
			starts := 0
			for line := range strings.Lines(log) {
				if strings.Contains(line, "starting an etcd server") {
					starts++
					if !strings.Contains(line, `"snapshot-count":100,`) {
						t.Errorf("%s started without --snapshot-count=100: %s", m.Name, line)
					}
				}
			}
			if starts < 1+killed[m.Name] {
				t.Errorf("%s started %d times, killed %d times", m.Name, starts, killed[m.Name])
			}
			restarts += starts - 1
		}
		if restarts == 0 {
			t.Error("no member was restarted")
		}
	})
}
