package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/runner"
)

const compareUsage = `usage: faultline compare [flags] [-- run flags]

Runs the same test once per read mode, with every worker pinned to one
member and a nemesis that cuts a member off, then writes one page setting
the modes side by side: read latency and throughput, how many serializable
reads were stale and by how much, each run's verdict, and how many reads
succeeded during the faults. Flags after -- go to every run; the modes
compared win over them.
`

func compareCmd(ctx context.Context, args []string) (int, error) {
	command := strings.TrimSpace("faultline compare " + strings.Join(args, " "))
	args, runArgs := splitRunArgs(args)
	fs := flag.NewFlagSet("faultline compare", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), compareUsage); fs.PrintDefaults() }
	modes := fs.String("read-consistency", "linearizable,serializable", "read modes to compare, comma-separated")
	target := fs.String("target", "etcd", "store under test: "+compose.TargetUsage)
	nodes := fs.Int("nodes", 3, "cluster members")
	nemesis := fs.String("nemesis", "partition-random", "fault that leaves some pinned clients on a minority")
	timeLimit := fs.Duration("time-limit", 30*time.Second, "how long each run's workload runs")
	results := fs.String("results", "results", "where the comparison's folder is written")
	if err := parseOwnFlags(fs, args); err != nil {
		return exitError, err
	}
	if len(split(*modes)) < 2 {
		return exitError, fmt.Errorf("--read-consistency %q: name at least two modes to compare", *modes)
	}
	base := runDefaults()
	c := &base.Config
	c.Target, c.Nodes, c.Workload, c.Nemesis, c.TimeLimit = *target, *nodes, "kv", *nemesis, rundir.Duration(*timeLimit)
	c.NemesisInterval, c.NemesisDuration, c.ClientMode = rundir.Duration(5*time.Second), rundir.Duration(5*time.Second), "pinned"
	if err := parseRunFlags(&base, runArgs, os.Stderr); err != nil {
		return exitError, fmt.Errorf("run flags after --: %w", err)
	}
	var tests []runner.Test
	for _, mode := range split(*modes) {
		t := base
		t.Config.Name, t.Config.ReadConsistency = "compare-"+mode, mode
		if err := validateBuilt(&t); err != nil {
			return exitError, fmt.Errorf("comparison run with %s reads: %w", mode, err)
		}
		tests = append(tests, t)
	}
	started := time.Now()
	dir := filepath.Join(*results, "compare", started.UTC().Format("20060102T150405Z"))
	b := reports.Batch{Kind: reports.KindCompare, Title: "Read modes compared", Command: command, Started: started}
	return runBatch(ctx, b, dir, *results, tests)
}
