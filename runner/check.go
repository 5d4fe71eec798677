package runner

import (
	"context"
	"fmt"
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
	res.Problems = slices.DeleteFunc(res.Problems, func(p string) bool { return strings.HasPrefix(p, "the run did not finish") })
	lin := checker.Register(ctx, ops, timeout, filepath.Join(dir, visualizationFile))
	res.Checks = []checker.Result{lin}
	res.Verdict = checker.Worst(lin.Verdict)
	res.Stats = checker.Summarise(ops)
	res.Faults = history.Faults(events)
	if err := rundir.Write(dir, res); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	if err := reports.Write(dir, res, events); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}
