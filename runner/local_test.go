package runner

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

// localTest is a test of kvnode as local processes, with a fault of
// nemesis every 3 s for 2 s.
func localTest(t *testing.T, length time.Duration, nemesis string) Test {
	t.Helper()
	test := shortTest(t, "kvnode", length)
	test.Config.Runtime, test.Config.Nemesis = compose.Local, nemesis
	test.Config.NemesisInterval, test.Config.NemesisDuration = rundir.Duration(3*time.Second), rundir.Duration(2*time.Second)
	return test
}

// TestLocalRuntime runs kvnode as local processes under partitions (made
// by the harness's peer proxies), pauses and kills: correct, it is valid
// and leaves no process or data behind; with stale reads switched on, an
// isolated leader's local answers make it invalid.
func TestLocalRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	t.Run("valid", func(t *testing.T) {
		test := localTest(t, 20*time.Second, "partition-leader,pause-random,kill-leader")
		res, dir := run(t, test)
		if res.Verdict != checker.Valid {
			t.Fatalf("verdict %s on correct kvnode: %+v", res.Verdict, res.Checks)
		}
		if res.Config.Runtime != compose.Local || res.Config.Binary == "" {
			t.Errorf("results.json says runtime %q, binary %q", res.Config.Runtime, res.Config.Binary)
		}
		var seen []string
		for _, w := range res.Faults {
			if w.Stop <= w.Start || len(w.Nodes) == 0 {
				t.Errorf("fault window %+v: not closed, or no member hit", w)
			}
			if w.Fault == "partition-leader" && !strings.Contains(w.Mechanism, "proxy") {
				t.Errorf("partition made by %q, want the peer proxies", w.Mechanism)
			}
			if !slices.Contains(seen, w.Fault) {
				seen = append(seen, w.Fault)
			}
		}
		if len(seen) != 3 {
			t.Errorf("faults %v in 20 s, want all three of partition-leader, pause-random, kill-leader", seen)
		}
		if fi, err := os.Stat(filepath.Join(dir, "logs", "n1.log")); err != nil || fi.Size() == 0 {
			t.Errorf("n1's log missing or empty: %v", err)
		}
		left, _ := filepath.Glob(filepath.Join(os.TempDir(), "faultline-local-"+res.Config.RunID+"-*"))
		if len(left) > 0 {
			t.Errorf("the run left %v behind", left)
		}
	})
	t.Run("stale-read", func(t *testing.T) {
		test := shortTest(t, "kvnode", 15*time.Second)
		test.Config.Runtime = compose.Local
		test.Config.UnsafeBug, test.Config.Nemesis = "stale-read", "partition-leader"
		test.Config.NemesisInterval, test.Config.NemesisDuration = rundir.Duration(3*time.Second), rundir.Duration(4*time.Second)
		res, _ := run(t, test)
		if res.Verdict != checker.Invalid {
			t.Fatalf("verdict %s with stale reads under partitions, want invalid: %+v", res.Verdict, res.Checks)
		}
	})
}

// TestTargetFile runs kvnode as described by ci/targets/kvnode.json, as
// local processes with its leader killed: the file alone makes a target
// that boots and passes the normal test, and results.json names the file.
// Given no seed, the run picks one and records it in results.json and in
// the rerun command.
func TestTargetFile(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	target := "file:" + filepath.Join("..", "ci", "targets", "kvnode.json")
	test := shortTest(t, target, 10*time.Second)
	test.Config.Runtime = compose.Local
	test.Config.Command = "faultline run --target " + target
	res, dir := run(t, test)
	if res.Verdict != checker.Valid {
		t.Fatalf("verdict %s on kvnode from its target file: %+v", res.Verdict, res.Checks)
	}
	stored, err := rundir.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s := stored.Config.Seed; s == 0 || stored.Config.Command != test.Config.Command+" --seed "+strconv.FormatInt(s, 10) {
		t.Errorf("results.json has seed %d and rerun command %q, want a seed and the command repeating it", s, stored.Config.Command)
	}
	if res.Config.Target != target || !strings.Contains(filepath.Base(res.Config.Binary), "kvnode-") {
		t.Errorf("results.json says target %q, binary %q", res.Config.Target, res.Config.Binary)
	}
	if !slices.ContainsFunc(res.Faults, func(w history.Window) bool { return w.Fault == "kill-leader" }) {
		t.Errorf("no leader was killed: %+v", res.Faults)
	}
}
