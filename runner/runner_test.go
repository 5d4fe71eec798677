package runner

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/rundir"
)

// dockerOrSkip connects to the engine, or skips when there is none (CI has
// one, so there these tests always run).
func dockerOrSkip(t *testing.T) *client.Client {
	t.Helper()
	docker, err := compose.NewDocker(context.Background())
	if err != nil {
		t.Skipf("skipping: needs a Docker engine: %v", err)
	}
	t.Cleanup(func() { docker.Close() })
	return docker
}

// shortTest is a 3-member register test of the given length with the
// leader killed every 4 s, or with another nemesis set afterwards.
func shortTest(t *testing.T, target string, length time.Duration) Test {
	t.Helper()
	wd, _ := os.Getwd()
	src, err := compose.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Name, cfg.Target, cfg.TimeLimit = "e2e", target, rundir.Duration(length)
	cfg.NemesisInterval, cfg.NemesisDuration = rundir.Duration(4*time.Second), rundir.Duration(2*time.Second)
	cfg.CheckTimeout = rundir.Duration(time.Minute)
	return Test{Source: src, Results: t.TempDir(), Progress: &bytes.Buffer{}, Config: cfg}
}

func run(t *testing.T, test Test) (*rundir.Results, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, dir, err := Run(ctx, test)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, test.Progress.(*bytes.Buffer).String())
	}
	// go test -v shows where the suite's time goes.
	t.Logf("time spent: %s", reports.PhasesText(res.Phases))
	return res, dir
}

// readHistory reads the history a run wrote.
func readHistory(t *testing.T, dir string) []history.Event {
	t.Helper()
	events, err := history.ReadFile(filepath.Join(dir, rundir.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// TestKillLeaderRegister is the short end-to-end test: three etcd members
// in containers, the register workload for 20 s, the leader killed every
// few seconds. Healthy etcd must come out valid, with the kills recorded
// and nothing of the run left on the engine.
func TestKillLeaderRegister(t *testing.T) {
	docker := dockerOrSkip(t)
	res, dir := run(t, shortTest(t, "etcd", 20*time.Second))
	ctx := context.Background()
	if res.Verdict != checker.Valid {
		t.Fatalf("verdict %s on healthy etcd: %+v", res.Verdict, res.Checks)
	}
	if len(res.Problems) > 0 {
		t.Errorf("problems: %v", res.Problems)
	}
	var phases []string
	for _, p := range res.Phases {
		phases = append(phases, p.Name)
		if p.Took <= 0 && p.Name != rundir.PhaseBuild {
			t.Errorf("phase %s took %v", p.Name, time.Duration(p.Took))
		}
		if p.Name == rundir.PhaseTest && time.Duration(p.Took) < 20*time.Second {
			t.Errorf("the test phase took %v, shorter than its time limit", time.Duration(p.Took))
		}
	}
	if want := []string{rundir.PhaseBuild, rundir.PhaseBoot, rundir.PhaseTest, rundir.PhaseTeardown, rundir.PhaseCheck}; !slices.Equal(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	if !slices.ContainsFunc(res.Checks, func(c checker.Result) bool {
		return c.Checker == checker.RecoveryChecker && c.Verdict == checker.Valid
	}) {
		t.Errorf("no valid recovery check after the final heal: %+v", res.Checks)
	}
	kills := 0
	for _, w := range res.Faults {
		if w.Fault == "kill-leader" && w.Stop > w.Start && len(w.Nodes) == 1 {
			kills++
		}
	}
	if kills < 2 {
		t.Errorf("leader killed and healed %d times in 20 s, want at least 2: %+v", kills, res.Faults)
	}
	var all checker.OpStats
	for _, s := range res.Stats.Ops {
		if s.F == checker.All {
			all = s
		}
	}
	if all.OK < 100 {
		t.Errorf("only %d operations succeeded", all.OK)
	}

	for _, f := range []string{rundir.HistoryFile, rundir.ResultsFile, rundir.ReportFile, "logs/n1.log"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	events := readHistory(t, dir)
	if len(events) < 2*all.OK {
		t.Errorf("history has %d events for %d ok operations", len(events), all.OK)
	}
	// Every kill of the leader makes the members elect one in a higher
	// term, and the leader watch, which runs until the cluster settled
	// after the final heal, sees it.
	for _, w := range res.Faults {
		if w.Fault != "kill-leader" {
			continue
		}
		var before uint64
		elected := false
		for _, e := range events {
			if e.Process != history.Nemesis || e.F != history.Leader {
				continue
			}
			if e.Time <= w.Start {
				before = max(before, e.Term)
			} else if e.Term > before && len(e.Nodes) == 1 {
				elected = true
			}
		}
		if !elected {
			t.Errorf("no leader seen in a term after %d once %v was killed at %d", before, w.Nodes, w.Start)
		}
	}

	// The history ends with the leader the cluster settled on.
	settledAt, lastLeader := -1, -1
	for i, e := range events {
		switch {
		case e.F == history.Recover && e.Fault == history.Final:
			settledAt = i
		case e.Process == history.Nemesis && e.F == history.Leader && len(e.Nodes) == 1:
			lastLeader = i
		}
	}
	if settledAt < 0 || lastLeader < settledAt {
		t.Errorf("the last leader seen (event %d) is not after the cluster settled (event %d)", lastLeader, settledAt)
	}

	left, err := compose.CleanCount(ctx, docker, res.Config.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if left != (compose.Removed{}) {
		t.Errorf("the run left %+v behind", left)
	}
}

// TestKvnodeBugs runs kvnode through short tests: correct, it must be
// valid; with each bug switched on, the checker that can see it must say
// invalid.
func TestKvnodeBugs(t *testing.T) {
	dockerOrSkip(t)
	for _, tc := range []struct {
		bug, workload, nemesis string
		want                   checker.Verdict
		// by, when set, is the checker that must reach want.
		by string
	}{
		{"", "register", "kill-leader", checker.Valid, ""},
		// Links cut by packet drops: kvnode's peer streams must come back
		// once the partition heals (dials lost in it must not hang on), and
		// a proposal forwarded to the cut-off member must not hold up the
		// stream that brings it the new leader's heartbeats.
		{"", "register", "partition-leader", checker.Valid, ""},
		// Followers answer "linearizable" reads from their own, lagging state.
		{"stale-read", "register", "none", checker.Invalid, ""},
		// A put is acknowledged before it commits: a new leader may never
		// have it, or give its revision to another write.
		{"ack-before-commit", "kv", "kill-leader", checker.Invalid, ""},
		{"watch-drop", "watch", "none", checker.Invalid, ""},
		{"watch-dup", "watch", "none", checker.Invalid, ""},
		// Leases expire while they are still being kept alive.
		{"lease-early", "lease", "none", checker.Invalid, ""},
		// One member keeps the history compactions dropped elsewhere:
		// reads of the current state cannot tell, the members' hashes can.
		{"divergent-compact", "register", "compact", checker.Invalid, checker.AgreeChecker},
		// Compactions are no trouble in a healthy member's log.
		{"", "kv", "compact", checker.Valid, checker.LogsChecker},
		// Members panic applying a compaction; only their logs say why
		// (no existing switch makes a member log trouble).
		{"panic-on-compact", "kv", "compact", checker.Invalid, checker.LogsChecker},
		// A writing transaction reads the revision before the latest: its
		// reads and writes are of different states, which the append
		// checker shows as cycles; correct, the same run is valid.
		{"txn-read-behind", "append", "none", checker.Invalid, checker.AppendChecker},
		{"", "append", "kill-leader", checker.Valid, checker.AppendChecker},
	} {
		name := tc.bug
		if name == "" {
			name = "no-bug"
		}
		t.Run(name+"/"+tc.workload+"/"+tc.nemesis, func(t *testing.T) {
			test := shortTest(t, "kvnode", 15*time.Second)
			test.Config.UnsafeBug, test.Config.Workload, test.Config.Nemesis = tc.bug, tc.workload, tc.nemesis
			res, _ := run(t, test)
			if res.Verdict != tc.want {
				t.Fatalf("kvnode with bug %q, %s under %s: verdict %s, want %s: %+v", tc.bug, tc.workload, tc.nemesis, res.Verdict, tc.want, res.Checks)
			}
			for _, c := range res.Checks {
				if c.Verdict == checker.Invalid && len(c.Anomalies) == 0 {
					t.Errorf("%s says invalid without evidence", c.Checker)
				}
			}
			if tc.by != "" && !slices.ContainsFunc(res.Checks, func(c checker.Result) bool { return c.Checker == tc.by && c.Verdict == tc.want }) {
				t.Errorf("%s did not say %s: %+v", tc.by, tc.want, res.Checks)
			}
		})
	}
}
