package runner

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

// TestKillLeaderKV runs the kv workload for 20 s against three etcd
// members in containers while the leader is killed every few seconds,
// with linearizable and serializable reads mixed and a compaction every
// 5 s. Healthy etcd must come out valid, with every kind of kv operation
// succeeding.
func TestKillLeaderKV(t *testing.T) {
	docker := dockerOrSkip(t)
	test := shortTest(t, "etcd", 20*time.Second)
	test.Config.Name, test.Config.Workload = "e2e-kv", "kv"
	test.Config.ReadConsistency, test.Config.ClientMode = "mixed", "balanced"
	test.Config.CompactInterval = rundir.Duration(5 * time.Second)
	res, dir := run(t, test)
	if res.Verdict != checker.Valid {
		t.Fatalf("verdict %s on healthy etcd: %+v", res.Verdict, res.Checks)
	}
	var checks []string
	for _, c := range res.Checks {
		checks = append(checks, c.Checker)
	}
	if want := []string{checker.KVChecker, checker.CommitLogChecker, checker.RecoveryChecker, checker.AgreeChecker, checker.LogsChecker}; !slices.Equal(checks, want) {
		t.Fatalf("checks %v, want %v", checks, want)
	}
	t.Logf("%s: %s (%.1fs)", res.Checks[0].Checker, res.Checks[0].Summary, res.Checks[0].Seconds)
	if len(res.Problems) > 0 {
		t.Errorf("problems: %v", res.Problems)
	}
	ok := map[string]int{}
	for _, s := range res.Stats.Ops {
		ok[s.F] = s.OK
	}
	for _, f := range []string{"kv-get", "kv-range", "kv-list", "kv-get-serializable", "kv-range-serializable", "kv-put", "kv-delete", "kv-txn", "kv-compact"} {
		if ok[f] == 0 {
			t.Errorf("no %s succeeded: %v", f, ok)
		}
	}
	events := readHistory(t, dir)
	if !slices.ContainsFunc(events, func(e history.Event) bool { return e.Type == history.OK && e.Serializable }) {
		t.Error("no serializable read succeeded")
	}
	if left, err := compose.CleanCount(context.Background(), docker, res.Config.RunID); err != nil || left != (compose.Removed{}) {
		t.Errorf("the run left %+v behind (%v)", left, err)
	}
}

// TestMixRegisterKV runs the register and kv workloads together, each
// worker's client pinned to one member: both checkers must say valid, the
// kv one counting the register's writes towards the revision.
func TestMixRegisterKV(t *testing.T) {
	dockerOrSkip(t)
	test := shortTest(t, "etcd", 15*time.Second)
	test.Config.Name, test.Config.Workload = "e2e-mix", "register,kv"
	test.Config.ReadConsistency, test.Config.ClientMode = "serializable", "pinned"
	res, _ := run(t, test)
	if res.Verdict != checker.Valid {
		t.Fatalf("verdict %s on healthy etcd: %+v", res.Verdict, res.Checks)
	}
	var names []string
	for _, c := range res.Checks {
		names = append(names, c.Checker)
		t.Logf("%s: %s", c.Checker, c.Summary)
	}
	if !slices.Equal(names, []string{checker.RegisterChecker, checker.KVChecker, checker.CommitLogChecker, checker.RecoveryChecker, checker.AgreeChecker, checker.LogsChecker}) {
		t.Errorf("checkers %v", names)
	}
	ok := map[string]int{}
	for _, s := range res.Stats.Ops {
		ok[s.F] = s.OK
	}
	if ok[history.Write] == 0 || ok["kv-put"] == 0 {
		t.Errorf("both workloads should have written: %v", ok)
	}
}

// TestKvnodeStaleReadKV: kvnode with its stale-read switch answers
// linearizable reads from a follower's lagging state; the kv checker must
// say invalid and draw porcupine's view.
func TestKvnodeStaleReadKV(t *testing.T) {
	dockerOrSkip(t)
	test := shortTest(t, "kvnode", 15*time.Second)
	test.Config.Name, test.Config.Workload = "e2e-kv-stale-read", "kv"
	test.Config.UnsafeBug, test.Config.Nemesis = "stale-read", "none"
	res, dir := run(t, test)
	if res.Verdict != checker.Invalid {
		t.Fatalf("kvnode with stale reads: verdict %s, want invalid: %+v", res.Verdict, res.Checks)
	}
	c := res.Checks[0]
	t.Logf("%s: %s; %v", c.Checker, c.Summary, c.Anomalies)
	if c.Visualization == "" {
		t.Fatal("no visualization")
	}
	if fi, err := os.Stat(filepath.Join(dir, c.Visualization)); err != nil || fi.Size() == 0 {
		t.Errorf("visualization %s not written: %v", c.Visualization, err)
	}
}

// TestPartitionedMemberStaleReads is the case read modes are compared
// for: each worker pinned to one member, serializable reads, and one
// member cut off from the others at a time. The cut-off member keeps
// answering from its old state: valid (every answer is a state that
// existed), but measurably stale.
func TestPartitionedMemberStaleReads(t *testing.T) {
	dockerOrSkip(t)
	test := shortTest(t, "etcd", 20*time.Second)
	test.Config.Name, test.Config.Workload, test.Config.Nemesis = "e2e-kv-partition", "kv", "partition-random"
	test.Config.ReadConsistency, test.Config.ClientMode = "serializable", "pinned"
	test.Config.NemesisDuration = rundir.Duration(5 * time.Second)
	res, dir := run(t, test)
	if res.Verdict != checker.Valid {
		t.Fatalf("verdict %s on healthy etcd: %+v", res.Verdict, res.Checks)
	}
	events := readHistory(t, dir)
	ops, err := history.Ops(events)
	if err != nil {
		t.Fatal(err)
	}
	st := checker.Summarise(checker.NewInput(events, ops)).Staleness
	if st == nil {
		t.Fatal("no serializable reads in the statistics")
	}
	t.Logf("%d serializable reads, %d stale; revisions behind %+v; ms behind %+v", st.Reads, st.Stale, st.Revisions, st.Millis)
	if st.Reads == 0 || st.Revisions.Max < 10 {
		t.Errorf("a member cut off for 5 s should have served reads at least 10 revisions behind: %+v", st)
	}
	stored, err := rundir.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := stored.Stats.Staleness; got == nil || got.Reads != st.Reads || got.Stale != st.Stale || got.Revisions != st.Revisions {
		t.Errorf("results.json holds staleness %+v, want %+v", got, st)
	}
}

// TestKillLeaderKVResolved: the kv workload with the leader killed and a
// short operation timeout leaves writes of unknown outcome; the recorder of
// the commit log watched two members throughout, its log agrees with the
// history, and the kv check resolves those writes with it (more of them
// than the history alone resolves, checked again without the log), valid.
func TestKillLeaderKVResolved(t *testing.T) {
	dockerOrSkip(t)
	test := shortTest(t, "etcd", 20*time.Second)
	test.Config.Name, test.Config.Workload = "e2e-kv-resolved", "kv"
	test.Config.OpTimeout = rundir.Duration(300 * time.Millisecond)
	test.Config.CompactInterval = rundir.Duration(5 * time.Second)
	res, dir := run(t, test)
	for _, c := range res.Checks {
		t.Logf("%s: %s: %s", c.Checker, c.Verdict, c.Summary)
	}
	if res.Verdict != checker.Valid {
		t.Fatalf("verdict %s on healthy etcd: %+v", res.Verdict, res.Checks)
	}
	kv := res.Checks[0]
	if kv.Checker != checker.KVChecker || kv.Resolved == nil || kv.Resolved.Taken+kv.Resolved.NotTaken == 0 {
		t.Fatalf("%s resolved %+v: want writes of unknown outcome resolved", kv.Checker, kv.Resolved)
	}
	if c := res.Checks[1]; c.Checker != checker.CommitLogChecker || c.Verdict != checker.Valid {
		t.Fatalf("check %s: %s, want the commit log's, valid", c.Checker, c.Verdict)
	}

	// The history alone resolves fewer.
	if err := os.Rename(filepath.Join(dir, rundir.CommitLogFile), filepath.Join(dir, "moved.jsonl")); err != nil {
		t.Fatal(err)
	}
	again := &rundir.Results{Config: res.Config, Started: res.Started}
	if err := Check(context.Background(), dir, again); err != nil {
		t.Fatal(err)
	}
	alone := again.Checks[0]
	t.Logf("without the recorder's log: %s: %s", alone.Verdict, alone.Summary)
	if n := slices.IndexFunc(again.Checks, func(c checker.Result) bool { return c.Checker == checker.CommitLogChecker }); n >= 0 {
		t.Errorf("a commit-log check without a commit log: %+v", again.Checks[n])
	}
	if alone.Resolved != nil && alone.Resolved.Taken+alone.Resolved.NotTaken >= kv.Resolved.Taken+kv.Resolved.NotTaken {
		t.Errorf("the history alone resolved %+v, with the recorder's log %+v: want more with it", alone.Resolved, kv.Resolved)
	}
}
