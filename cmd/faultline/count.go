package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/runner"
)

// repeat is how often faultline run runs its test (Jepsen's --test-count).
type repeat struct {
	count    int
	failFast bool
}

// repeatFlags adds --count and --fail-fast to fs, faultline run's alone:
// the batch commands run each of their tests once.
func repeatFlags(fs *flag.FlagSet) *repeat {
	r := &repeat{}
	fs.IntVar(&r.count, "count", 1, "run the test this many times, one after another, each in its own folder, then list their verdicts;\n"+
		"with --seed S, run k has seed S+k-1 (each run a different schedule, each repeatable alone), without it each run picks its own")
	fs.BoolVar(&r.failFast, "fail-fast", false, "with --count: stop after the first invalid run")
	return r
}

// runFunc runs one test; runner.Run is one, tests give their own.
type runFunc func(context.Context, runner.Test) (*rundir.Results, string, error)

// run runs t r.count times, prints each run's verdict as it ends and a
// summary line per run, and returns the exit code of the worst verdict, or
// 2 when any run could not run, as nightly does. An interrupted run ends
// the loop.
func (r repeat) run(ctx context.Context, t runner.Test, run runFunc, out io.Writer) (int, error) {
	seed := t.Config.Seed
	var lines []string
	var verdicts []checker.Verdict
	failed := 0
	for k := range r.count {
		rt := t
		if seed != 0 {
			rt.Config.Seed = seed + int64(k)
		}
		// Each run's rerun command repeats that run alone.
		rt.Config.Command = runCommand(rt.Config)
		fmt.Fprintf(out, "run %d of %d\n", k+1, r.count)
		res, dir, err := run(ctx, rt)
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprint(out, summary(lines))
				return exitError, interrupted(ctx, err, dir)
			}
			fmt.Fprintf(out, "run %d could not run: %v\n", k+1, err)
			lines = append(lines, fmt.Sprintf("run %d: could not run  %s", k+1, orNone(dir)))
			failed++
			continue
		}
		report(res, dir)
		verdicts = append(verdicts, res.Verdict)
		lines = append(lines, fmt.Sprintf("run %d: %-7s seed %d  %s", k+1, res.Verdict, res.Config.Seed, dir))
		if r.failFast && res.Verdict == checker.Invalid {
			lines = append(lines, fmt.Sprintf("--fail-fast: stopped after run %d of %d", k+1, r.count))
			break
		}
	}
	fmt.Fprint(out, summary(lines))
	if failed > 0 {
		return exitError, fmt.Errorf("%d of %d runs could not run", failed, failed+len(verdicts))
	}
	return exitCode(checker.Worst(verdicts...)), nil
}

func summary(lines []string) string {
	return strings.Join(lines, "\n") + "\n"
}

// orNone is dir, or says that a run that could not run has no folder.
func orNone(dir string) string {
	if dir == "" {
		return "(no folder)"
	}
	return dir
}
