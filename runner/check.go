package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/nemesis"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/workloads"
)

// unfinished opens the problem that results.json states while a run is
// under way, and notChecked the one tooBig states; a check of the recorded
// history settles both.
const (
	unfinished = "the run did not finish"
	notChecked = "not checked: "
)

// Check reads the history stored in dir, checks it, and writes
// results.json and index.html next to it. res carries what is known of the
// run (config, start, problems); its verdict, checks, stats and faults are
// replaced. It is what a run does after the test, and what `faultline
// check` does with a stored run.
func Check(ctx context.Context, dir string, res *rundir.Results) error {
	began := time.Now()
	res.Phases = slices.DeleteFunc(res.Phases, func(p rundir.Phase) bool { return p.Name == rundir.PhaseCheck })
	res.Problems = slices.DeleteFunc(res.Problems, func(p string) bool {
		return strings.HasPrefix(p, unfinished) || strings.HasPrefix(p, notChecked)
	})
	path := filepath.Join(dir, rundir.HistoryFile)
	limit := checker.DefaultMemoryLimit()
	if gib := res.Config.CheckMemory; gib > 0 {
		limit = uint64(gib * (1 << 30))
	}
	if held := footprint(dir); held > limit {
		return tooBig(dir, res, held, limit, began)
	}
	// Hold the whole check, report included, to about the limit: by
	// default the heap may grow to twice what was live at the last
	// collection, and after a search that was most of the limit, writing
	// the report would take the process far past it.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(min(limit+limit/4, math.MaxInt64/2))))
	// The history is most of the heap and is held to the end, so letting
	// the heap grow to twice what is live (GOGC's default) buys little
	// but memory. At half that, a 5-minute full-speed kv,watch check peaks
	// at 6.8 GB resident, was 9.8, in the same time. A GOGC the user set
	// is theirs.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(50))
	}
	events, err := history.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the history: %w", err)
	}
	ops, err := history.Ops(events)
	if err != nil {
		return fmt.Errorf("history %s is malformed: %w", path, err)
	}
	timeout := time.Duration(res.Config.CheckTimeout)
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	specs, err := workloads.Lookup(res.Config.Workload)
	if err != nil {
		return fmt.Errorf("checking %s: %w", dir, err)
	}
	in := checker.NewInput(events, ops)
	in.Timeout, in.MemoryLimit = timeout, limit
	in.NoResolve = res.Config.NoResolve
	in.Files, in.LogsDir = os.DirFS(dir), rundir.LogsDir
	in.Visualize = func(file string) string { return filepath.Join(dir, file) }
	for _, m := range res.Config.Members {
		in.Members = append(in.Members, m.Name)
	}
	// A schedule's faults are listed in Nemesis too. Of a nemesis this
	// version cannot read, assume it compacted: the check is then only less
	// strict, where assuming it did not could call a healthy store broken.
	faults, err := nemesis.Parse(res.Config.Nemesis)
	in.OtherCompactor = err != nil || nemesis.Compacts(faults)
	recorded, err := readCommitLog(dir)
	if err != nil {
		return err
	}
	if recorded != nil {
		// The kv and register checks resolve their writes of unknown
		// outcome with it; the others do not read it.
		in.Recorded, in.CommitLog = recorded, checker.RecordedLog(recorded)
	}
	res.Checks = nil
	for _, s := range specs {
		res.Checks = append(res.Checks, s.Check(ctx, in))
	}
	if recorded != nil {
		res.Checks = append(res.Checks, checker.CommitLogCheck(ctx, in))
	}
	for _, check := range checker.RunChecks {
		res.Checks = append(res.Checks, check(ctx, in))
	}
	var verdicts []checker.Verdict
	for _, c := range res.Checks {
		verdicts = append(verdicts, c.Verdict)
	}
	res.Verdict = checker.Worst(verdicts...)
	res.Stats = checker.Summarise(in)
	res.Faults = in.Faults
	res.Unfinished = unfinishedRun(events, time.Duration(res.Config.TimeLimit))
	return record(dir, res, events, began)
}

// record ends the check begun at began (reading the history and running
// the checkers; not writing the report) and writes results.json and the
// report of events.
func record(dir string, res *rundir.Results, events []history.Event, began time.Time) error {
	res.Phases = append(res.Phases, rundir.Phase{Name: rundir.PhaseCheck, Took: rundir.Duration(time.Since(began).Round(time.Millisecond))})
	if err := rundir.Write(dir, res); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	if err := reports.Write(dir, res, events); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// CheckMemoryError says what is wrong with a --check-memory of gib; nil when
// nothing is.
func CheckMemoryError(gib float64) error {
	if gib < 0 {
		return fmt.Errorf("--check-memory %g: want GiB above 0, such as 8, or 0 for half this machine's memory", gib)
	}
	return nil
}

// tooBig records in dir that its history was not checked, because holding
// it alone takes held bytes, past limit. Every search would stop unknown
// there, and reading it could take the process down first.
func tooBig(dir string, res *rundir.Results, held, limit uint64, began time.Time) error {
	gib := func(b uint64) float64 { return float64(b) / (1 << 30) }
	res.Problems = append(res.Problems, fmt.Sprintf(notChecked+"holding the history and its commit log takes about %.1f GiB, past the check's memory limit of %.1f GiB "+
		"(faultline holds a history whole while it checks it); check it where more memory is free with faultline check --check-memory GIB %s, "+
		"or record less with --rate or a shorter --time-limit", gib(held), gib(limit), dir))
	res.Verdict, res.Checks, res.Stats, res.Faults = checker.Unknown, nil, checker.Stats{}, nil
	return record(dir, res, nil, began)
}

// footprint estimates what holding the history and the commit log of dir
// takes; a file it cannot read counts nothing here, and reading it says
// what is wrong.
func footprint(dir string) uint64 {
	var held uint64
	for _, f := range []string{rundir.HistoryFile, rundir.CommitLogFile} {
		n, _ := history.Footprint(filepath.Join(dir, f))
		held += n
	}
	return held
}

// readCommitLog reads the operations of the recorder of the commit log
// from dir; nil when the run has none (it predates the recorder).
func readCommitLog(dir string) ([]history.Op, error) {
	path := filepath.Join(dir, rundir.CommitLogFile)
	events, err := history.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the commit log: %w", err)
	}
	ops, err := history.Ops(events)
	if err != nil {
		return nil, fmt.Errorf("commit log %s is malformed: %w", path, err)
	}
	return ops, nil
}

// unfinishedRun says how much of a run events recorded when they end before
// its final phase, and is nil when they do not.
func unfinishedRun(events []history.Event, limit time.Duration) *rundir.Unfinished {
	if history.Finished(events) {
		return nil
	}
	var last int64
	for _, e := range events {
		last = max(last, e.Time)
	}
	recorded := time.Duration(last).Round(100 * time.Millisecond)
	of := ""
	if limit > 0 {
		of = fmt.Sprintf(" of its %s time limit", limit)
	}
	return &rundir.Unfinished{
		Recorded:  rundir.Duration(recorded),
		TimeLimit: rundir.Duration(limit),
		Summary: fmt.Sprintf("recorded until %.1f s%s; no final heal, so whether the cluster came back whole (recovery) and whether its members agree were not checked. The verdict is that of what was recorded.",
			recorded.Seconds(), of),
	}
}
