package workloads_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/runner"
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
