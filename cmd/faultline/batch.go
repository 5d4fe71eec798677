package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/runner"
)

// runBatch runs tests one after another into dir/runs, writes the batch's
// page and the run index, and returns the exit code of the worst verdict.
// A test that could not run makes the batch exit 2: a gate that skipped a
// scenario has not passed it.
func runBatch(ctx context.Context, b reports.Batch, dir, results string, tests []runner.Test) (int, error) {
	src, err := findSource()
	if err != nil {
		return exitError, err
	}
	var verdicts []checker.Verdict
	for i, t := range tests {
		c := t.Config
		fmt.Fprintf(os.Stderr, "faultline: %s run %d of %d: %s\n", b.Kind, i+1, len(tests), c.Name)
		t.Source, t.Results = src, filepath.Join(dir, "runs")
		t.Progress = os.Stderr
		res, runDir, err := runner.Run(ctx, t)
		if ctx.Err() != nil {
			return exitError, fmt.Errorf("interrupted during %s run %d (%s): %w", b.Kind, i+1, c.Name, ctx.Err())
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "faultline: %s could not run: %v\n", c.Name, err)
			b.Failed = append(b.Failed, fmt.Sprintf("%s: %v", c.Name, err))
			continue
		}
		rel, _ := filepath.Rel(dir, runDir)
		b.Runs = append(b.Runs, rel)
		verdicts = append(verdicts, res.Verdict)
	}
	return finishBatch(b, dir, results, verdicts)
}

// finishBatch writes a batch's page into dir, updates the run index of
// results (none when results is empty), and returns the exit code of the
// worst verdict; 2 when any test could not run.
func finishBatch(b reports.Batch, dir, results string, verdicts []checker.Verdict) (int, error) {
	if err := reports.WriteBatch(dir, b); err != nil {
		return exitError, fmt.Errorf("writing the %s page: %w", b.Kind, err)
	}
	if results != "" {
		if err := reports.WriteIndexFile(results); err != nil {
			fmt.Fprintf(os.Stderr, "faultline: warning: updating the run index: %v\n", err)
		}
	}
	worst := checker.Worst(verdicts...)
	fmt.Fprintf(os.Stderr, "%s: %d runs, worst verdict %s, %d could not run\nreport: %s\n",
		b.Kind, len(b.Runs), worst, len(b.Failed), filepath.Join(dir, "index.html"))
	if len(b.Failed) > 0 {
		return exitError, fmt.Errorf("%d of %d runs could not run", len(b.Failed), len(b.Runs)+len(b.Failed))
	}
	return exitCode(worst), nil
}

// parseOwnFlags parses a batch command's own flags, those before "--";
// anything else there belongs after it.
func parseOwnFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: put run flags after --", fs.Arg(0))
	}
	return nil
}

// splitRunArgs splits a batch command's arguments at "--": its own flags
// before, the flags for every run after.
func splitRunArgs(args []string) (own, run []string) {
	for i, a := range args {
		if a == "--" {
			return args[:i], args[i+1:]
		}
	}
	return args, nil
}
