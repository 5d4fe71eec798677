package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/runner"
)

// Matrix is the nightly gate's checked-in scenario list: every scenario
// runs against every target at every size.
type Matrix struct {
	// Targets are "kvnode" or "etcd@<version>".
	Targets []string `json:"targets"`
	Nodes   []int    `json:"nodes"`
	// TimeLimit is each run's workload time.
	TimeLimit string     `json:"time_limit"`
	Scenarios []Scenario `json:"scenarios"`
}

// Scenario is one workload under one nemesis, with any other run flags.
// Schedule, instead of Nemesis, names a --nemesis-schedule file, relative
// to the matrix file. Vary, when set, are sets of further flags: each run
// of the scenario gets one of them, drawn at random when the gate starts
// (its config and rerun command say which), so that settings such as the
// members' snapshot and compaction knobs differ from night to night.
type Scenario struct {
	Workload string     `json:"workload"`
	Nemesis  string     `json:"nemesis,omitempty"`
	Schedule string     `json:"schedule,omitempty"`
	Args     []string   `json:"args,omitempty"`
	Vary     [][]string `json:"vary,omitempty"`
}

// varied names set j of a scenario's Vary, for an error.
func varied(s Scenario, j int) string {
	if len(s.Vary) == 0 {
		return ""
	}
	return fmt.Sprintf(", vary set %d", j+1)
}

// readMatrix loads and expands a matrix into validated tests, one per run.
// Every run is validated before the first starts: a typo in the matrix
// must fail the gate at once, not an hour in.
func readMatrix(path string) (Matrix, []runner.Test, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Matrix{}, nil, err
	}
	var m Matrix
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Matrix{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(m.Targets) == 0 || len(m.Nodes) == 0 || len(m.Scenarios) == 0 {
		return Matrix{}, nil, fmt.Errorf("%s: want at least one target, size and scenario", path)
	}
	timeLimit, err := time.ParseDuration(m.TimeLimit)
	if err != nil {
		return Matrix{}, nil, fmt.Errorf("%s: time_limit %q: want a duration such as 30s", path, m.TimeLimit)
	}
	for i, s := range m.Scenarios {
		if (s.Nemesis == "") == (s.Schedule == "") {
			return Matrix{}, nil, fmt.Errorf("%s: scenario %d: want either nemesis or schedule", path, i+1)
		}
	}
	var tests []runner.Test
	var problems []string
	for _, target := range m.Targets {
		name, version, _ := strings.Cut(target, "@")
		for _, n := range m.Nodes {
			for i, s := range m.Scenarios {
				t := runDefaults()
				c := &t.Config
				c.Target, c.Nodes, c.Workload, c.Nemesis, c.TimeLimit = name, n, s.Workload, s.Nemesis, rundir.Duration(timeLimit)
				nem := s.Nemesis
				if s.Schedule != "" {
					c.ScheduleFile = filepath.Join(filepath.Dir(path), s.Schedule)
					c.NemesisInterval, c.NemesisDuration = 0, 0
					nem = strings.TrimSuffix(filepath.Base(c.ScheduleFile), filepath.Ext(c.ScheduleFile))
				}
				if version != "" {
					c.Version = version
				}
				c.Name = fmt.Sprintf("%s-%dn-%s-%s", strings.ReplaceAll(target, "@", "-"), n, strings.ReplaceAll(s.Workload, ",", "+"), strings.ReplaceAll(nem, ",", "+"))
				// Every set of Vary must run, not only tonight's draw.
				sets := s.Vary
				if len(sets) == 0 {
					sets = [][]string{nil}
				}
				draw := rand.IntN(len(sets))
				for j, set := range sets {
					run := t
					err := parseRunFlags(&run, slices.Concat(s.Args, set), os.Stderr)
					if err == nil {
						err = validateBuilt(&run)
					}
					if err != nil {
						problems = append(problems, fmt.Sprintf("%s (scenario %d%s): %v", c.Name, i+1, varied(s, j), err))
					} else if j == draw {
						tests = append(tests, run)
					}
				}
			}
		}
	}
	if len(problems) > 0 {
		return Matrix{}, nil, fmt.Errorf("%s has runs faultline cannot do:\n  %s", path, strings.Join(problems, "\n  "))
	}
	return m, tests, nil
}

func nightlyCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("faultline nightly", flag.ContinueOnError)
	matrix := fs.String("matrix", "ci/nightly.json", "the scenario matrix")
	results := fs.String("results", "results", "where the gate's folder is written")
	dry := fs.Bool("dry-run", false, "validate the matrix and list its runs without running them")
	shardFlag := fs.String("shard", "", "run only shard i of n, every n-th run of the matrix starting at the i-th (as i/n, such as 2/4)")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	if fs.NArg() > 0 {
		return exitError, fmt.Errorf("unexpected argument %q: faultline nightly takes only flags", fs.Arg(0))
	}
	sh := shard{1, 1}
	if *shardFlag != "" {
		var err error
		if sh, err = parseShard(*shardFlag); err != nil {
			return exitError, err
		}
	}
	_, tests, err := readMatrix(*matrix)
	if err != nil {
		return exitError, err
	}
	all := len(tests)
	tests = sh.pick(tests)
	if len(tests) == 0 && all > 0 {
		return exitError, fmt.Errorf("--shard %s: the matrix's %d runs leave this shard none; give at most %d shards", sh, all, all)
	}
	if *dry {
		for _, t := range tests {
			fmt.Println(t.Config.Command)
		}
		return exitValid, nil
	}
	started := time.Now()
	dir := filepath.Join(*results, "nightly", started.UTC().Format("20060102T150405Z"))
	b := reports.Batch{Kind: reports.KindNightly, Title: "Nightly gate", Command: "faultline nightly " + strings.Join(args, " "), Started: started}
	if *shardFlag != "" {
		b.Title = fmt.Sprintf("Nightly gate, shard %d of %d", sh.i, sh.n)
		b.Shard = sh.String()
	}
	if len(tests) == 0 {
		return exitError, errors.New("the matrix expands to no runs")
	}
	return runBatch(ctx, b, dir, *results, tests)
}

// shard is the i-th of n shards of a matrix: the runs k (counting from 1
// in --dry-run order) with (k-1) mod n = i-1. Taking every n-th run rather
// than a block spreads each target and size over the shards, so no one
// machine gets all the slow ones.
type shard struct{ i, n int }

func parseShard(s string) (shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, errI := strconv.Atoi(a)
	n, errN := strconv.Atoi(b)
	if !ok || errI != nil || errN != nil || n < 1 || i < 1 || i > n {
		return shard{}, fmt.Errorf("--shard %q: want i/n with 1 <= i <= n, such as 2/4 for shard 2 of 4", s)
	}
	return shard{i, n}, nil
}

func (s shard) String() string { return fmt.Sprintf("%d/%d", s.i, s.n) }

func (s shard) pick(tests []runner.Test) []runner.Test {
	var out []runner.Test
	for k := s.i - 1; k < len(tests); k += s.n {
		out = append(out, tests[k])
	}
	return out
}
