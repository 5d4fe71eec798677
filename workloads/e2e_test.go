package workloads_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/runner"
	"github.com/faultline/faultline/workloads"
)

// TestWorkloadsEndToEnd runs the watch, kubernetes and lease workloads for
// 20 s each against three etcd members in containers while the leader is
// killed every few seconds. Healthy etcd must come out valid, with the
// leader killed at least twice and the workload's checker having had
// something to check.
func TestWorkloadsEndToEnd(t *testing.T) {
	docker, err := compose.NewDocker(context.Background())
	if err != nil {
		t.Skipf("skipping: needs a Docker engine: %v", err)
	}
	defer docker.Close()
	wd, _ := os.Getwd()
	src, err := compose.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		workload string
		checker  string
	}{
		{"watch", checker.WatchChecker},
		{"kubernetes", checker.KubernetesChecker},
		{"lease", checker.LeaseChecker},
	} {
		t.Run(tc.workload, func(t *testing.T) {
			var progress bytes.Buffer
			test := runner.Test{
				Source:   src,
				Results:  t.TempDir(),
				Progress: &progress,
				Config:   runner.DefaultConfig(),
			}
			c := &test.Config
			c.Name, c.Workload, c.Workers, c.Keys = "e2e-"+tc.workload, tc.workload, 6, 6
			c.TimeLimit, c.CheckTimeout = rundir.Duration(20*time.Second), rundir.Duration(time.Minute)
			c.NemesisInterval, c.NemesisDuration = rundir.Duration(4*time.Second), rundir.Duration(2*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			res, dir, err := runner.Run(ctx, test)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, progress.String())
			}
			t.Logf("run directory %s", dir)
			for _, c := range res.Checks {
				t.Logf("%s: %s: %s", c.Checker, c.Verdict, c.Summary)
				for _, a := range c.Anomalies {
					t.Logf("  %s", a)
				}
			}
			if res.Verdict != checker.Valid {
				t.Fatalf("verdict %s on healthy etcd", res.Verdict)
			}
			var checks []string
			for _, c := range res.Checks {
				checks = append(checks, c.Checker)
			}
			if want := []string{tc.checker, checker.CommitLogChecker, checker.RecoveryChecker, checker.AgreeChecker, checker.LogsChecker}; !slices.Equal(checks, want) {
				t.Fatalf("checks %v, want %v", checks, want)
			}
			kills := 0
			for _, w := range res.Faults {
				if w.Fault == "kill-leader" && w.Stop > w.Start {
					kills++
				}
			}
			if kills < 2 {
				t.Errorf("leader killed and healed %d times, want at least 2", kills)
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
		})
	}
}

// TestPinnedWatchers: with one worker on three kvnode members (local
// processes) while members are killed and restarted, each member still has
// a watcher of its own, every response of which that member served, on one
// stream the whole run (its client rides out the restarts); and the watch
// check holds them to its guarantees: the run is valid.
func TestPinnedWatchers(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	wd, _ := os.Getwd()
	src, err := compose.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	test := runner.Test{Source: src, Results: t.TempDir(), Progress: &progress, Config: runner.DefaultConfig()}
	c := &test.Config
	c.Name, c.Target, c.Runtime, c.Workload, c.Workers, c.Nemesis = "e2e-pinned", "kvnode", compose.Local, "watch", 1, "kill-random"
	c.TimeLimit, c.CheckTimeout = rundir.Duration(15*time.Second), rundir.Duration(time.Minute)
	c.NemesisInterval, c.NemesisDuration = rundir.Duration(3*time.Second), rundir.Duration(2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, dir, err := runner.Run(ctx, test)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	if res.Verdict != checker.Valid {
		t.Fatalf("verdict %s on healthy kvnode: %+v", res.Verdict, res.Checks)
	}
	events, err := history.ReadFile(filepath.Join(dir, rundir.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]map[string]int{} // watcher → member → responses with events
	opens := map[string]int{}
	for _, e := range events {
		if !strings.HasPrefix(e.WatchID, workloads.PinnedWatch) {
			continue
		}
		if e.Type == history.Invoke && e.F == checker.WatchOpen {
			opens[e.WatchID]++
		}
		if e.Type == history.OK && len(e.WatchEvents) > 0 {
			if served[e.WatchID] == nil {
				served[e.WatchID] = map[string]int{}
			}
			served[e.WatchID][e.Member]++
		}
	}
	for _, m := range res.Config.Members {
		id := workloads.PinnedWatch + m.Name
		if got := served[id]; len(got) != 1 || got[m.Name] == 0 {
			t.Errorf("watcher %s: responses with events by member %v, want all by %s", id, got, m.Name)
		}
		if opens[id] != 1 {
			t.Errorf("watcher %s opened %d sessions, want one stream the whole run", id, opens[id])
		}
	}
	if len(served) != len(res.Config.Members) {
		t.Errorf("pinned watchers %v, want one per member of %v", served, res.Config.Members)
	}
	kills := 0
	for _, w := range res.Faults {
		if w.Stop > w.Start {
			kills++
		}
	}
	if kills < 2 {
		t.Errorf("%d kills healed, want at least 2", kills)
	}
}
