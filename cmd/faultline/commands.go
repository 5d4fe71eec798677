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
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/runner"
	"github.com/faultline/faultline/workloads"
)

// errHelp marks -h: usage was printed, nothing failed.
var errHelp = flag.ErrHelp

// runFlags parses and validates the flags of faultline run.
func runFlags(args []string, out io.Writer) (runner.Test, error) {
	fs := flag.NewFlagSet("faultline run", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		cfg                                            rundir.Config
		results                                        string
		timeLimit, opTimeout, every, dur, checkTimeout time.Duration
	)
	fs.StringVar(&cfg.Target, "target", "etcd", "store under test: "+compose.TargetUsage)
	fs.StringVar(&cfg.Version, "etcd-version", compose.DefaultEtcdVersion, "etcd release to build and test (v3.5.x, v3.6.x, v3.7.x); every etcd module is built at that release, and a member that reports another fails the run")
	fs.StringVar(&cfg.Runtime, "runtime", compose.Docker, "where members run: docker (containers on a private network) or local (processes of this machine, Linux)")
	fs.StringVar(&cfg.UnsafeBug, "unsafe-bug", "", "kvnode (or a target file with a bug_flag) only: inject a known bug (e.g. stale-read) to see the checkers catch it")
	fs.IntVar(&cfg.Nodes, "nodes", 3, "cluster members, 1 to 9")
	fs.StringVar(&cfg.Workload, "workload", "register", "workloads, comma-separated: "+strings.Join(workloads.Names(), ", "))
	fs.StringVar(&cfg.Nemesis, "nemesis", "kill-leader", "faults to inject (or none); a,b: they take turns, one per window; a+b: both in one window:\n"+nemesis.Help())
	fs.DurationVar(&timeLimit, "time-limit", 60*time.Second, "how long the workload runs")
	fs.DurationVar(&every, "nemesis-interval", 10*time.Second, "quiet time before each fault (±20% jitter); the time to recover is measured in it")
	fs.DurationVar(&dur, "nemesis-duration", 5*time.Second, "how long each fault lasts before it is healed (±20% jitter)")
	fs.StringVar(&cfg.ScheduleFile, "nemesis-schedule", "", "a JSON `file` of fault windows taken in order, instead of --nemesis, --nemesis-interval and --nemesis-duration;\n"+
		"e.g. ci/schedules/mixed.json: "+`{"repeat": true, "jitter": 0.2, "steps": [{"fault": "partition-leader", "quiet": "10s", "for": "5s"}, ...]}`+"\n"+
		"each step waits quiet, injects fault (one --nemesis item: a, a+b or a=setting) for for, then heals; durations such as 10s or 1m30s;\n"+
		"repeat (default true) starts over after the last step; jitter (default 0.2, from 0 to under 1) spreads each window either way")
	fs.IntVar(&cfg.Workers, "workers", 10, "concurrent clients, each with its own etcd client")
	fs.IntVar(&cfg.Keys, "keys", 8, "keys in use at once")
	fs.IntVar(&cfg.OpsPerKey, "ops-per-key", 1000, "operations on one key before a fresh key replaces it; bounds the checker's work per key")
	fs.Float64Var(&cfg.Rate, "rate", 0, "operations per second over all workers; 0 means as fast as they go")
	fs.DurationVar(&opTimeout, "op-timeout", 2*time.Second, "timeout of one operation; a timed-out operation is recorded as info (unknown)")
	fs.DurationVar(&checkTimeout, "check-timeout", runner.DefaultCheckTimeout, "time the linearizability checker may take before the verdict is unknown")
	fs.StringVar(&cfg.ReadMode, "read-consistency", "linearizable", "reads of the kv workload: linearizable, serializable (served by one member, may be stale) or mixed")
	fs.StringVar(&cfg.ClientMode, "client-mode", "balanced", "balanced: each worker's client may use every member; pinned: each worker talks to one member only")
	var compact time.Duration
	fs.DurationVar(&compact, "compact-interval", 0, "kv workload: compact at a recent revision this often; 0 never")
	fs.StringVar(&cfg.Name, "name", "", "test name, the folder under --results (default target-workload-nemesis, or target-workload-<schedule file name>)")
	fs.StringVar(&results, "results", "results", "where run directories are written")
	if err := fs.Parse(args); err != nil {
		return runner.Test{}, err
	}
	if fs.NArg() > 0 {
		return runner.Test{}, fmt.Errorf("unexpected argument %q: faultline run takes only flags", fs.Arg(0))
	}
	cfg.TimeLimit, cfg.OpTimeout = rundir.Duration(timeLimit), rundir.Duration(opTimeout)
	cfg.NemesisEvery, cfg.NemesisFor, cfg.CheckTimeout = rundir.Duration(every), rundir.Duration(dur), rundir.Duration(checkTimeout)
	cfg.CompactInterval = rundir.Duration(compact)

	var problems []string
	check := func(bad bool, format string, a ...any) {
		if bad {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	if cfg.Target != "etcd" {
		// The version flag has a default; it only means something for etcd.
		cfg.Version = ""
	}
	target, err := compose.ParseTarget(cfg.Target, cfg.Version)
	if err != nil {
		problems = append(problems, "--target: "+err.Error())
	} else {
		check(cfg.UnsafeBug != "" && target.BugFlag == "", "--unsafe-bug %q: %s has no bug switches (kvnode has)", cfg.UnsafeBug, target.Name)
	}
	check(cfg.Nodes < 1 || cfg.Nodes > compose.MaxNodes, "--nodes %d: want 1 to %d", cfg.Nodes, compose.MaxNodes)
	if _, err := workloads.New(cfg.Workload, workloads.Options{}); err != nil {
		problems = append(problems, "--workload: "+err.Error())
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if explicit["nemesis-schedule"] {
		var clash []string
		for _, name := range []string{"nemesis", "nemesis-interval", "nemesis-duration"} {
			if explicit[name] {
				clash = append(clash, "--"+name)
			}
		}
		check(len(clash) > 0, "--nemesis-schedule sets the faults and their windows, so it cannot be combined with %s: give the schedule file or those flags, not both",
			strings.Join(clash, ", "))
		if cfg.ScheduleFile == "" {
			problems = append(problems, "--nemesis-schedule: want the path of a schedule file, such as ci/schedules/mixed.json")
		} else if s, err := runner.ReadSchedule(cfg.ScheduleFile, cfg.Nodes); err != nil {
			problems = append(problems, "--nemesis-schedule: "+err.Error())
		} else {
			// The schedule replaces the flags' nemesis; their defaults did not run.
			cfg.Schedule, cfg.Nemesis = s, s.Faults()
			cfg.NemesisEvery, cfg.NemesisFor = 0, 0
			if faults, err := nemesis.Parse(cfg.Nemesis); err == nil {
				if err := nemesis.Supported(faults, cfg.Runtime); err != nil {
					problems = append(problems, "--nemesis-schedule: "+err.Error())
				}
			}
		}
	} else if faults, err := nemesis.Parse(cfg.Nemesis); err != nil {
		problems = append(problems, "--nemesis: "+err.Error())
	} else if err := errors.Join(nemesis.Fits(faults, cfg.Nodes), nemesis.Supported(faults, cfg.Runtime)); err != nil {
		problems = append(problems, "--nemesis: "+err.Error())
	}
	check(cfg.Runtime != compose.Docker && cfg.Runtime != compose.Local, "--runtime %q: want docker or local", cfg.Runtime)
	check(!slices.Contains([]string{"linearizable", "serializable", "mixed"}, cfg.ReadMode),
		"--read-consistency %q: want linearizable, serializable or mixed", cfg.ReadMode)
	check(cfg.ClientMode != "balanced" && cfg.ClientMode != "pinned", "--client-mode %q: want balanced or pinned", cfg.ClientMode)
	check(compact < 0, "--compact-interval %s: want 0 (never) or a positive duration such as 5s", compact)
	if n := len(strings.Split(cfg.Workload, ",")); n > 1 {
		check(cfg.Workers < n, "--workers %d: %d workloads need at least one worker each", cfg.Workers, n)
	}
	check(timeLimit <= 0, "--time-limit %s: want a positive duration such as 60s", timeLimit)
	check(cfg.ScheduleFile == "" && cfg.Nemesis != "none" && every <= 0, "--nemesis-interval %s: want a positive duration such as 10s", every)
	check(cfg.ScheduleFile == "" && cfg.Nemesis != "none" && dur <= 0, "--nemesis-duration %s: want a positive duration such as 5s", dur)
	check(cfg.Workers < 1 || cfg.Workers > 1000, "--workers %d: want 1 to 1000", cfg.Workers)
	check(cfg.Keys < 1, "--keys %d: want at least 1", cfg.Keys)
	check(cfg.OpsPerKey < 1, "--ops-per-key %d: want at least 1", cfg.OpsPerKey)
	check(cfg.Rate < 0, "--rate %g: want 0 (no limit) or more", cfg.Rate)
	check(opTimeout <= 0, "--op-timeout %s: want a positive duration such as 2s", opTimeout)
	check(checkTimeout <= 0, "--check-timeout %s: want a positive duration such as 2m", checkTimeout)
	check(strings.ContainsAny(cfg.Name, `/\`) || cfg.Name == "." || cfg.Name == "..", "--name %q: want a plain folder name", cfg.Name)
	if len(problems) > 0 {
		return runner.Test{}, errors.New(strings.Join(problems, "\n  "))
	}
	if cfg.Name == "" {
		nem := cfg.Nemesis
		if cfg.Schedule != nil {
			nem = strings.TrimSuffix(filepath.Base(cfg.ScheduleFile), filepath.Ext(cfg.ScheduleFile))
		}
		cfg.Name = target.Name + "-" + cfg.Workload + "-" + nem
	}
	cfg.Command = strings.TrimSpace("faultline run " + strings.Join(args, " "))

	wd, err := os.Getwd()
	if err != nil {
		return runner.Test{}, err
	}
	src, err := compose.FindRoot(wd)
	if err != nil {
		return runner.Test{}, err
	}
	return runner.Test{Config: cfg, Source: src, Results: results}, nil
}

func runCmd(ctx context.Context, args []string) (int, error) {
	t, err := runFlags(args, os.Stderr)
	if err != nil {
		return exitError, err
	}
	t.Progress = os.Stderr
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		t.Live = true
	}
	res, dir, err := runner.Run(ctx, t)
	if err != nil {
		if dir != "" && ctx.Err() != nil {
			err = fmt.Errorf("%w; the history so far is in %s (faultline check %s checks it)", err, dir, dir)
		}
		return exitError, err
	}
	return report(res, dir), nil
}

func checkCmd(ctx context.Context, args []string) (int, error) {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return exitError, errors.New("usage: faultline check <run-dir>, e.g. faultline check results/latest")
	}
	dir := args[0]
	res, err := rundir.Read(dir)
	if err != nil {
		return exitError, fmt.Errorf("%s is not a run directory faultline can check: %w", dir, err)
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
	fmt.Fprintf(os.Stderr, "verdict: %s\nreport: %s\n", res.Verdict, filepath.Join(dir, rundir.ReportFile))
	switch res.Verdict {
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
harnesses were recorded count as dead. Run ids limit it to those runs.
Built images stay: they are a cache.
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
