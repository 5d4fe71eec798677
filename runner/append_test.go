package runner

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/rundir"
)

// TestAppendKvnode runs the append workload against kvnode as local
// processes: correct, under kills, partitions and pauses, every check is
// valid and the append checker had committed transactions to check; with
// txn-read-behind, a writing transaction's reads are a revision old and
// the append checker must say invalid, with a cycle explained and drawn.
func TestAppendKvnode(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	t.Run("valid", func(t *testing.T) {
		test := localTest(t, 20*time.Second, "kill-leader,partition-leader,pause-random")
		test.Config.Workload = "append"
		res, _ := run(t, test)
		if res.Verdict != checker.Valid {
			t.Fatalf("verdict %s on correct kvnode: %+v", res.Verdict, res.Checks)
		}
		c := res.Checks[0]
		if c.Checker != checker.AppendChecker || !strings.Contains(c.Summary, "no anomaly strict-serializable forbids") {
			t.Errorf("first check %s: %s", c.Checker, c.Summary)
		}
		t.Logf("%s: %s", c.Checker, c.Summary)
	})
	t.Run("txn-read-behind", func(t *testing.T) {
		test := localTest(t, 10*time.Second, "none")
		test.Config.Workload, test.Config.UnsafeBug = "append", "txn-read-behind"
		res, dir := run(t, test)
		c := res.Checks[0]
		if res.Verdict != checker.Invalid || c.Checker != checker.AppendChecker || c.Verdict != checker.Invalid {
			t.Fatalf("verdict %s with txn-read-behind, want invalid by %s: %+v", res.Verdict, checker.AppendChecker, res.Checks)
		}
		t.Logf("%s: %s", c.Checker, c.Summary)
		cycle := false
		for _, a := range c.Anomalies {
			// A cycle names its edges and why each exists.
			if strings.Contains(a, " -rw ") && strings.Contains(a, "which did not include") {
				cycle = true
				t.Logf("%.400s", a)
				break
			}
		}
		if !cycle {
			t.Errorf("no cycle with an explained rw edge among %d anomalies", len(c.Anomalies))
		}
		if b, err := os.ReadFile(filepath.Join(dir, c.Visualization)); c.Visualization == "" || err != nil || !strings.HasPrefix(string(b), "<svg") {
			t.Errorf("cycle drawing %q not written: %v", c.Visualization, err)
		}
	})
}

// TestAppendSerializableEtcd: serializable reads on etcd, each worker
// pinned to one member, one member cut off at a time. The cut-off member
// answers from its old state: serializable allows that, so the check is
// valid, and it shows the stale reads as the anomalies strict
// serializability would forbid.
func TestAppendSerializableEtcd(t *testing.T) {
	dockerOrSkip(t)
	test := shortTest(t, "etcd", 20*time.Second)
	test.Config.Name, test.Config.Workload, test.Config.Nemesis = "e2e-append-serializable", "append", "partition-random"
	test.Config.ReadConsistency, test.Config.ClientMode = "serializable", "pinned"
	test.Config.NemesisInterval, test.Config.NemesisDuration = rundir.Duration(3*time.Second), rundir.Duration(5*time.Second)
	res, _ := run(t, test)
	c := res.Checks[0]
	t.Logf("%s: %s", c.Checker, c.Summary)
	if res.Verdict != checker.Valid || c.Checker != checker.AppendChecker {
		t.Fatalf("verdict %s, want valid by %s: %+v", res.Verdict, checker.AppendChecker, res.Checks)
	}
	if !strings.Contains(c.Summary, "no anomaly serializable forbids; also found, which serializable allows: ") ||
		!slices.ContainsFunc(c.Anomalies, func(a string) bool { return strings.HasPrefix(a, "(allowed) ") && strings.Contains(a, "-realtime: ") }) {
		t.Errorf("no stale read shown as allowed by serializable: %s; %.300q", c.Summary, c.Anomalies)
	}
}
