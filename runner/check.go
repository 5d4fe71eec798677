package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/rundir"
)

// visualizationFile is porcupine's view of the failing keys.
const visualizationFile = "linearizability.html"

// unfinished opens the problem that results.json states while a run is
// under way; a check of the recorded history settles it.
const unfinished = "the run did not finish"

// checkInput is what a checker may draw on: the run's folder (for its
// visualization), its configuration, the operations and the fault windows.
type checkInput struct {
	dir     string
	config  rundir.Config
	ops     []history.Op
	faults  []history.Window
	timeout time.Duration
}

// checks says how each workload's operations are checked.
var checks = map[string]func(ctx context.Context, in checkInput) checker.Result{
	"kv": func(ctx context.Context, in checkInput) checker.Result {
		return checker.KVWith(ctx, in.ops, checker.KVOptions{
			Timeout:           in.timeout,
			VisualizationPath: filepath.Join(in.dir, "linearizability-kv.html"),
			// The compact nemesis compacts at revisions the history does
			// not record.
			OtherCompactor: strings.Contains(in.config.Nemesis, "compact"),
		})
	},
	"register": func(ctx context.Context, in checkInput) checker.Result {
		return checker.Register(ctx, in.ops, in.timeout, filepath.Join(in.dir, visualizationFile))
	},
	"watch": func(_ context.Context, in checkInput) checker.Result {
		return checker.Watch(in.ops)
	},
	"kubernetes": func(_ context.Context, in checkInput) checker.Result {
		return checker.Kubernetes(in.ops)
	},
	"lease": func(_ context.Context, in checkInput) checker.Result {
		// Fault windows extend leases (a new leader renews them all).
		return checker.Lease(in.ops, in.faults, checker.DefaultLeaseSkew)
	},
}

// Check reads the history stored in dir, checks it, and writes
// results.json and index.html next to it. res carries what is known of the
// run (config, start, problems); its verdict, checks, stats and faults are
// replaced. It is what a run does after the test, and what `faultline
// check` does with a stored run.
func Check(ctx context.Context, dir string, res *rundir.Results) error {
	events, err := history.ReadFile(filepath.Join(dir, rundir.HistoryFile))
	if err != nil {
		return fmt.Errorf("reading the history: %w", err)
	}
	ops, err := history.Ops(events)
	if err != nil {
		return fmt.Errorf("history %s is malformed: %w", filepath.Join(dir, rundir.HistoryFile), err)
	}
	timeout := time.Duration(res.Config.CheckTimeout)
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	res.Problems = slices.DeleteFunc(res.Problems, func(p string) bool { return strings.HasPrefix(p, unfinished) })
	res.Checks = nil
	in := checkInput{dir: dir, config: res.Config, ops: ops, faults: history.Faults(events), timeout: timeout}
	for _, w := range strings.Split(res.Config.Workload, ",") {
		check, ok := checks[w]
		if !ok {
			return fmt.Errorf("no checker for workload %q", w)
		}
		res.Checks = append(res.Checks, check(ctx, in))
	}
	if r, ok := checker.Recovery(events); ok {
		res.Checks = append(res.Checks, r)
	}
	var members []string
	for _, m := range res.Config.Members {
		members = append(members, m.Name)
	}
	res.Checks = append(res.Checks, checker.Agree(events, members), checker.Logs(os.DirFS(dir), rundir.LogsDir, members, events))
	var verdicts []checker.Verdict
	for _, c := range res.Checks {
		verdicts = append(verdicts, c.Verdict)
	}
	res.Verdict = checker.Worst(verdicts...)
	res.Stats = checker.Summarise(ops)
	res.Faults = in.faults
	if err := rundir.Write(dir, res); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	if err := reports.Write(dir, res, events); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}
