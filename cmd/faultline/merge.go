package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/rundir"
)

const mergeUsage = `usage: faultline merge [flags] DIR...

Builds one nightly gate page from the results folders of its shards (each
written by faultline nightly --shard i/n under results/nightly/): their
runs are copied into one new folder, the page lists them all, and the exit
code is the gate's, as if one machine had run every scenario. A shard of
the n that is not given counts as runs that could not run.
`

// shardDir is one shard's results folder and the batch it records.
type shardDir struct {
	dir   string
	batch reports.Batch
	shard shard
}

func mergeCmd(_ context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("faultline merge", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), mergeUsage); fs.PrintDefaults() }
	results := fs.String("results", "results", "the merged folder is written to <results>/nightly/<time>, and the run index there updated")
	out := fs.String("out", "", "write the merged folder here instead; it must not exist yet")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	if fs.NArg() == 0 {
		return exitError, errors.New("give the shards' results folders: faultline merge DIR...")
	}
	shards, err := readShards(fs.Args())
	if err != nil {
		return exitError, err
	}
	started := time.Now()
	dir, root := *out, ""
	if dir == "" {
		dir, root = filepath.Join(*results, "nightly", started.UTC().Format("20060102T150405Z")), *results
	}
	b, verdicts, err := mergeShards(dir, shards)
	if err != nil {
		return exitError, err
	}
	b.Command = "faultline merge " + strings.Join(args, " ")
	return finishBatch(b, dir, root, verdicts)
}

// readShards reads the batch of every folder and checks that together
// they are shards of one gate, each given once. A folder without a shard
// is the whole gate, shard 1 of 1.
func readShards(dirs []string) ([]shardDir, error) {
	var out []shardDir
	for _, d := range dirs {
		b, err := reports.ReadBatch(d)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a nightly results folder: it has no %s; give the folders faultline nightly writes, results/nightly/<time>", d, reports.BatchFile)
		}
		if err != nil {
			return nil, err
		}
		if b.Kind != reports.KindNightly {
			return nil, fmt.Errorf("%s holds a %s, not a nightly gate: faultline merge takes the folders faultline nightly writes", d, b.Kind)
		}
		sh := shard{1, 1}
		if b.Shard != "" {
			if sh, err = parseShard(b.Shard); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", d, reports.BatchFile, err)
			}
		}
		for _, o := range out {
			switch {
			case o.shard.n != sh.n:
				return nil, fmt.Errorf("%s is shard %s but %s is shard %s: merge the shards of one gate", o.dir, o.shard, d, sh)
			case o.shard.i == sh.i:
				return nil, fmt.Errorf("%s and %s are both shard %s: give each shard once", o.dir, d, sh)
			}
		}
		out = append(out, shardDir{d, b, sh})
	}
	return out, nil
}

// mergeShards copies the shards' runs into dir, in shard order, and
// returns the merged batch and the runs' verdicts. A missing shard is
// recorded as could not run: a gate that skipped scenarios has not passed.
func mergeShards(dir string, shards []shardDir) (reports.Batch, []checker.Verdict, error) {
	b := reports.Batch{Kind: reports.KindNightly, Title: "Nightly gate", Started: shards[0].batch.Started}
	byIndex := map[int]shardDir{}
	for _, s := range shards {
		byIndex[s.shard.i] = s
		if s.batch.Started.Before(b.Started) {
			b.Started = s.batch.Started
		}
	}
	// Check every run before copying any, so a bad folder leaves nothing
	// half merged behind.
	var verdicts []checker.Verdict
	from := map[string]string{}
	var srcs []string
	for i := 1; i <= shards[0].shard.n; i++ {
		s, ok := byIndex[i]
		if !ok {
			b.Failed = append(b.Failed, fmt.Sprintf("shard %d/%d: no results folder given, so none of its runs is here", i, shards[0].shard.n))
			continue
		}
		for _, rel := range s.batch.Runs {
			if !filepath.IsLocal(rel) {
				return b, nil, fmt.Errorf("%s: run %s is outside the folder", s.dir, rel)
			}
			if other, ok := from[rel]; ok {
				return b, nil, fmt.Errorf("run %s is in both %s and %s", rel, other, s.dir)
			}
			from[rel] = s.dir
			src := filepath.Join(s.dir, rel)
			r, err := rundir.Read(src)
			if err != nil {
				return b, nil, fmt.Errorf("%s: run %s: %w", s.dir, rel, err)
			}
			b.Runs = append(b.Runs, rel)
			srcs = append(srcs, src)
			verdicts = append(verdicts, r.Verdict)
		}
		b.Failed = append(b.Failed, s.batch.Failed...)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return b, nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return b, nil, fmt.Errorf("the merged folder: %w; give a new one", err)
	}
	for i, rel := range b.Runs {
		if err := os.CopyFS(filepath.Join(dir, rel), os.DirFS(srcs[i])); err != nil {
			return b, nil, fmt.Errorf("copying run %s: %w", srcs[i], err)
		}
	}
	return b, verdicts, nil
}
