package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/nemesis"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/runner"
	"github.com/faultline/faultline/workloads"
)

// errHelp marks -h: usage was printed, nothing failed.
var errHelp = flag.ErrHelp

// runDefaults is the test faultline run runs when no flag says otherwise;
// the batch commands build their tests from it too.
func runDefaults() runner.Test {
	return runner.Test{Results: "results", Config: runner.DefaultConfig()}
}

// runFlagSet is faultline run's flags, bound to t: each starts at t's
// value, shown as its default, so parsing changes only what the flags name.
// run, the run flags of sweep and compare, and the args of a nightly
// scenario all go through it.
func runFlagSet(t *runner.Test, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("faultline run", flag.ContinueOnError)
	fs.SetOutput(out)
	cfg := &t.Config
	durationVar := func(p *rundir.Duration, name, usage string) {
		fs.DurationVar((*time.Duration)(p), name, time.Duration(*p), usage)
	}
	clusterFlags(fs, cfg)
	fs.StringVar(&cfg.Workload, "workload", cfg.Workload, "workloads, comma-separated: "+strings.Join(workloads.Names(), ", "))
	fs.StringVar(&cfg.Nemesis, "nemesis", cfg.Nemesis, "faults to inject (or none); a,b: they take turns, one per window; a+b: both in one window:\n"+nemesis.Help())
	durationVar(&cfg.TimeLimit, "time-limit", "how long the workload runs")
	durationVar(&cfg.NemesisInterval, "nemesis-interval", "quiet time before each fault (±20% jitter); the time to recover is measured in it")
	durationVar(&cfg.NemesisDuration, "nemesis-duration", "how long each fault lasts before it is healed (±20% jitter)")
	fs.StringVar(&cfg.ScheduleFile, "nemesis-schedule", cfg.ScheduleFile, "a JSON `file` of fault windows taken in order, instead of --nemesis, --nemesis-interval and --nemesis-duration;\n"+
		"e.g. ci/schedules/mixed.json: "+`{"repeat": true, "jitter": 0.2, "steps": [{"fault": "partition-leader", "quiet": "10s", "for": "5s"}, ...]}`+"\n"+
		"each step waits quiet, injects fault (one --nemesis item: a, a+b or a=setting) for for, then heals; durations such as 10s or 1m30s;\n"+
		"repeat (default true) starts over after the last step; jitter (default 0.2, from 0 to under 1) spreads each window either way")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent clients, each with its own etcd client")
	fs.IntVar(&cfg.Keys, "keys", cfg.Keys, "keys in use at once")
	fs.IntVar(&cfg.OpsPerKey, "ops-per-key", cfg.OpsPerKey, "operations on one key before a fresh key replaces it; bounds the checker's work per key")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "operations per second over all workers; 0 means as fast as they go")
	durationVar(&cfg.OpTimeout, "op-timeout", "timeout of one operation; a timed-out operation is recorded as info (unknown)")
	durationVar(&cfg.CheckTimeout, "check-timeout", "time the linearizability checker may take before the verdict is unknown")
	fs.Float64Var(&cfg.CheckMemory, "check-memory", cfg.CheckMemory, checkMemoryHelp)
	fs.BoolVar(&cfg.NoResolve, "no-resolve", cfg.NoResolve, noResolveHelp)
	fs.StringVar(&cfg.ReadConsistency, "read-consistency", cfg.ReadConsistency, "reads of the kv workload, and read-only transactions of append and wr (then checked as serializable): linearizable, serializable (served by one member, may be stale) or mixed")
	fs.StringVar(&cfg.ClientMode, "client-mode", cfg.ClientMode, "balanced: each worker's client may use every member; pinned: each worker talks to one member only")
	fs.StringVar(&cfg.DiskMode, "disk-mode", cfg.DiskMode, "runs with disk faults: ext4 (the default: any fsync commits every directory change, and so does a 5 s timer, as ext4 and xfs do) or strict (only a directory's own fsync commits its creates, renames and unlinks, as POSIX promises)")
	durationVar(&cfg.CompactInterval, "compact-interval", "kv workload: compact at a recent revision this often; 0 never")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "makes the nemesis schedule's random choices (jitter, members hit, partition splits) and every workload worker's repeat; 0 picks one, recorded in results.json and the rerun command")
	fs.StringVar(&cfg.Name, "name", cfg.Name, "test name, the folder under --results (default target-workload-nemesis, or target-workload-<schedule file name>)")
	fs.StringVar(&t.Results, "results", t.Results, "where run directories are written")
	return fs
}

// clusterFlags are the flags that say which cluster to start, bound to
// cfg: run's, and all of up's but its own.
func clusterFlags(fs *flag.FlagSet, cfg *rundir.Config) {
	fs.StringVar(&cfg.Target, "target", cfg.Target, "store under test: "+compose.TargetUsage)
	fs.StringVar(&cfg.Version, "etcd-version", cfg.Version, "etcd release to build and test (v3.5.x, v3.6.x, v3.7.x); every etcd module is built at that release, and a member that reports another fails the run")
	fs.StringVar(&cfg.Runtime, "runtime", cfg.Runtime, "where members run: docker (containers on a private network) or local (processes of this machine, Linux)")
	fs.StringVar(&cfg.UnsafeBug, "unsafe-bug", cfg.UnsafeBug, "kvnode (or a target file with a bug_flag) only: inject a known bug (e.g. stale-read) to see the checkers catch it")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "cluster members, 1 to 9")
	fs.Var(repeated{&cfg.MemberFlags}, "member-flag", "a server `flag` for every member, one word (--snapshot-count=100); repeat it for more. Not the flags faultline sets itself (--name, --data-dir, the URLs, --initial-cluster*, the bug switch: use --unsafe-bug).\n"+
		"kvnode and etcd v3.6 take --snapshot-count and --snapshot-catchup-entries; etcd v3.5 calls the latter --experimental-snapshot-catchup-entries")
}

// repeated is a flag that may be given many times, each time adding one word.
type repeated struct{ p *[]string }

func (w repeated) String() string {
	if w.p == nil {
		return ""
	}
	return strings.Join(*w.p, " ")
}

// Set adds to a clipped slice: the test the flags were bound to may share
// its array with another (a batch's base).
func (w repeated) Set(v string) error {
	*w.p = append(slices.Clip(*w.p), v)
	return nil
}

// parseRunFlags parses run flags onto t. --nemesis-schedule among them
// replaces the nemesis settings they do not give: the schedule cannot be
// combined with those flags, and their defaults do not run.
func parseRunFlags(t *runner.Test, args []string, out io.Writer) error {
	return parseInto(runFlagSet(t, out), t, args)
}

// parseInto parses args with fs, a runFlagSet bound to t, perhaps with
// flags of its command's own.
func parseInto(fs *flag.FlagSet, t *runner.Test, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: faultline run takes only flags", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["nemesis-schedule"] {
		return nil
	}
	cfg := &t.Config
	if cfg.ScheduleFile == "" {
		// To Validate an empty path is no schedule at all.
		return errors.New("--nemesis-schedule: want the path of a schedule file, such as ci/schedules/mixed.json")
	}
	if !given["nemesis"] {
		cfg.Nemesis = ""
	}
	if !given["nemesis-interval"] {
		cfg.NemesisInterval = 0
	}
	if !given["nemesis-duration"] {
		cfg.NemesisDuration = 0
	}
	return nil
}

// runFlags parses and validates the flags of faultline run: the test, and
// how often to run it.
func runFlags(args []string, out io.Writer) (runner.Test, repeat, error) {
	t := runDefaults()
	fs := runFlagSet(&t, out)
	rep := repeatFlags(fs)
	if err := parseInto(fs, &t, args); err != nil {
		return runner.Test{}, repeat{}, err
	}
	if rep.count < 1 {
		return runner.Test{}, repeat{}, fmt.Errorf("--count %d: want the number of runs, 1 or more", rep.count)
	}
	if err := t.Validate(); err != nil {
		return runner.Test{}, repeat{}, err
	}
	t.Config.Command = strings.TrimSpace("faultline run " + strings.Join(args, " "))
	src, err := findSource()
	if err != nil {
		return runner.Test{}, repeat{}, err
	}
	t.Source = src
	return t, *rep, nil
}

// runCommand is the faultline run command that runs c: what the test is
// first, then every other flag whose value differs from run's default. A
// schedule replaces the nemesis flags, so they are left out with one.
func runCommand(c rundir.Config) string {
	t := runDefaults()
	fs := runFlagSet(&t, io.Discard)
	t.Config = c // the flags are bound to t: they now read c
	nemesisFlags := []string{"nemesis", "nemesis-interval", "nemesis-duration"}
	lead := []string{"name", "target"}
	if c.Target == "etcd" {
		lead = append(lead, "etcd-version")
	}
	nem := "nemesis"
	if c.ScheduleFile != "" {
		nem = "nemesis-schedule"
	}
	lead = append(lead, "nodes", "workload", nem, "time-limit")
	words := []string{"faultline", "run"}
	for _, name := range lead {
		if v := fs.Lookup(name).Value.String(); v != "" {
			words = append(words, "--"+name, v)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if w, ok := f.Value.(repeated); ok {
			for _, v := range *w.p {
				words = append(words, "--"+f.Name, v)
			}
			return
		}
		replaced := c.ScheduleFile != "" && slices.Contains(nemesisFlags, f.Name)
		// An empty value (the etcd version Validate cleared for another
		// target) would take the next word as its own.
		if v := f.Value.String(); v != f.DefValue && v != "" && !replaced && !slices.Contains(lead, f.Name) {
			words = append(words, "--"+f.Name, v)
		}
	})
	return strings.Join(words, " ")
}

// validateBuilt validates a test a batch command built and records the
// faultline run command that repeats it.
func validateBuilt(t *runner.Test) error {
	t.Config.Command = runCommand(t.Config)
	return t.Validate()
}

// findSource finds the faultline checkout that images are built from.
func findSource() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return compose.FindRoot(wd)
}

func runCmd(ctx context.Context, args []string) (int, error) {
	t, rep, err := runFlags(args, os.Stderr)
	if err != nil {
		return exitError, err
	}
	t.Progress = os.Stderr
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		t.Live = true
	}
	if rep.count > 1 {
		return rep.run(ctx, t, runner.Run, os.Stderr)
	}
	res, dir, err := runner.Run(ctx, t)
	if err != nil {
		return exitError, interrupted(ctx, err, dir)
	}
	return report(res, dir), nil
}

// interrupted adds to the error of a run that ctx ended where what it
// recorded is.
func interrupted(ctx context.Context, err error, dir string) error {
	if dir != "" && ctx.Err() != nil {
		return fmt.Errorf("%w; the history so far is in %s (faultline check %s checks it)", err, dir, dir)
	}
	return err
}

const checkMemoryHelp = "the check's memory limit, in GiB: a search that passes it stops, unknown, and a history that alone would is not read; 0: half this machine's memory"

const noResolveHelp = "check the kv and register writes of unknown outcome as unknown, without resolving them from what the history shows was committed (to compare)"

func checkCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("faultline check", flag.ContinueOnError)
	noResolve := fs.Bool("no-resolve", false, noResolveHelp)
	memory := fs.Float64("check-memory", 0, checkMemoryHelp)
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	args = fs.Args()
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return exitError, errors.New("usage: faultline check [--no-resolve] [--check-memory GIB] <run-dir>, e.g. faultline check results/latest")
	}
	if err := runner.CheckMemoryError(*memory); err != nil {
		return exitError, err
	}
	dir := args[0]
	res, err := rundir.Read(dir)
	if err != nil {
		return exitError, fmt.Errorf("%s is not a run directory faultline can check: %w", dir, err)
	}
	// The setting is the check's: results.json then says how it was made.
	res.Config.NoResolve, res.Config.CheckMemory = *noResolve, *memory
	// A long run's history takes minutes to check: say it is under way.
	if fi, err := os.Stat(filepath.Join(dir, rundir.HistoryFile)); err == nil {
		fmt.Fprintf(os.Stderr, "faultline: checking %s (%.1f MB)\n", filepath.Join(dir, rundir.HistoryFile), float64(fi.Size())/1e6)
	}
	if err := runner.Check(ctx, dir, res); err != nil {
		return exitError, err
	}
	return report(res, dir), nil
}

// report prints the verdict and says where the report is; it returns the
// exit code for the verdict.
func report(res *rundir.Results, dir string) int {
	for _, c := range res.Checks {
		fmt.Fprintf(os.Stderr, "%s: %s — %s\n", c.Checker, c.Verdict, c.Summary)
	}
	for _, p := range res.Problems {
		fmt.Fprintf(os.Stderr, "problem: %s\n", p)
	}
	if u := res.Unfinished; u != nil {
		fmt.Fprintf(os.Stderr, "the run did not finish: %s\n", u.Summary)
	}
	if spent := reports.PhasesText(res.Phases); spent != "" {
		fmt.Fprintf(os.Stderr, "time spent: %s\n", spent)
	}
	fmt.Fprintf(os.Stderr, "verdict: %s\nreport: %s\n", res.Verdict, filepath.Join(dir, rundir.ReportFile))
	return exitCode(res.Verdict)
}

// exitCode is the exit code of a verdict.
func exitCode(v checker.Verdict) int {
	switch v {
	case checker.Valid:
		return exitValid
	case checker.Invalid:
		return exitInvalid
	}
	return exitUnknown
}

const cleanUsage = `usage: faultline clean [--all] [run-id ...]

Removes what runs left behind when their harness was killed before its
teardown: their containers, networks and volumes, and the folders of local
runs. A run whose harness still runs (another run on this machine, a CI job
beside yours) is kept and said so; so is a run whose harness is on another
host, since this one cannot check it. Runs made by a faultline from before
harnesses were recorded count as dead. A cluster faultline up left running
is kept until faultline down removes it (a local one only while a member of
it runs). Run ids limit it to those runs. Built images stay: they are a
cache.
`

func cleanCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("faultline clean", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), cleanUsage); fs.PrintDefaults() }
	all := fs.Bool("all", false, "also remove the containers, networks and volumes of live runs (a local folder stays while a member runs in it)")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	local, err := compose.CleanLocal(*all, fs.Args()...)
	sayCleaned(local)
	if err != nil {
		return exitError, err
	}
	docker, err := compose.NewDocker(ctx)
	if err != nil {
		return exitError, err
	}
	defer docker.Close()
	runs, err := compose.CleanStale(ctx, docker, *all, fs.Args()...)
	sayCleaned(runs)
	if len(local)+len(runs) == 0 {
		fmt.Fprintln(os.Stderr, "no run left anything behind")
	}
	if err != nil {
		return exitError, err
	}
	return exitValid, nil
}

// sayCleaned says what clean did with each run it found.
func sayCleaned(runs []compose.Swept) {
	for _, r := range runs {
		did := "removed"
		if r.Kept {
			did = "kept"
		}
		switch {
		case r.Dir != "":
			fmt.Fprintf(os.Stderr, "%s local run %s, folder %s: %s\n", did, r.RunID, r.Dir, r.Why)
		case r.Kept:
			fmt.Fprintf(os.Stderr, "kept run %s: %s\n", r.RunID, r.Why)
		default:
			fmt.Fprintf(os.Stderr, "removed run %s (%d containers, %d networks, %d volumes): %s\n",
				r.RunID, r.Containers, r.Networks, r.Volumes, r.Why)
		}
	}
}
