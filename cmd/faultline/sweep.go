package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/runner"
)

const sweepUsage = `usage: faultline sweep [flags] [-- run flags]

Runs the same test at each cluster size, for each target, read mode and
nemesis, then writes a page plotting latency and throughput against
cluster size. Flags after -- go to every run (see faultline run -h); the
sweep's own targets, sizes, nemeses and read modes win over them.
`

func sweepCmd(ctx context.Context, args []string) (int, error) {
	command := strings.TrimSpace("faultline sweep " + strings.Join(args, " "))
	args, runArgs := splitRunArgs(args)
	fs := flag.NewFlagSet("faultline sweep", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), sweepUsage); fs.PrintDefaults() }
	nodes := fs.String("nodes", "3,5,7,9", "cluster sizes, comma-separated")
	targets := fs.String("targets", "etcd", "targets, comma-separated: "+compose.TargetUsage)
	nemeses := fs.String("nemeses", "none,kill-leader", "nemeses, comma-separated; each size runs once per nemesis")
	modes := fs.String("read-consistency", "", "read modes, comma-separated (default: the run's own default)")
	timeLimit := fs.Duration("time-limit", 20*time.Second, "how long each run's workload runs")
	results := fs.String("results", "results", "where the sweep's folder is written")
	if err := parseOwnFlags(fs, args); err != nil {
		return exitError, err
	}
	var sizes []int
	for _, s := range split(*nodes) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return exitError, fmt.Errorf("--nodes %q: want sizes such as 3,5,7,9", *nodes)
		}
		sizes = append(sizes, n)
	}
	readModes := split(*modes)
	if len(readModes) == 0 {
		readModes = []string{""}
	}

	base := runDefaults()
	base.Config.TimeLimit = rundir.Duration(*timeLimit)
	if err := parseRunFlags(&base, runArgs, os.Stderr); err != nil {
		return exitError, fmt.Errorf("run flags after --: %w", err)
	}
	// Validate every run before the first one starts: a typo should not
	// surface half an hour in. The sweep's own dimensions win over flags
	// after --.
	started := time.Now()
	dir := filepath.Join(*results, "sweep", started.UTC().Format("20060102T150405Z"))
	var tests []runner.Test
	for _, target := range split(*targets) {
		// A target file's path is no folder name; its name field is.
		label := target
		if t, err := compose.ParseTarget(target, ""); err == nil {
			label = t.Name
		}
		for _, mode := range readModes {
			for _, nem := range split(*nemeses) {
				for _, n := range sizes {
					t := base
					c := &t.Config
					c.Name = fmt.Sprintf("%s-%dn-%s", label, n, nem)
					c.Target, c.Nodes, c.Nemesis = target, n, nem
					if mode != "" {
						c.Name += "-" + mode
						c.ReadConsistency = mode
					}
					if err := validateBuilt(&t); err != nil {
						return exitError, fmt.Errorf("sweep run %s with %d members, nemesis %s: %w", target, n, nem, err)
					}
					tests = append(tests, t)
				}
			}
		}
	}
	if len(tests) == 0 {
		return exitError, errors.New("nothing to sweep: give at least one size, target and nemesis")
	}

	b := reports.Batch{Kind: reports.KindSweep, Title: "Scale sweep", Command: command, Started: started}
	return runBatch(ctx, b, dir, *results, tests)
}

// split parses a comma-separated list, dropping empty items.
func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
