package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/rundir"
)

// writeShard writes a shard's results folder as faultline nightly does:
// one stored run per verdict, named by the map's keys, and the batch.
func writeShard(t *testing.T, dir, sh string, runs map[string]checker.Verdict, failed ...string) {
	t.Helper()
	started := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	b := reports.Batch{Kind: reports.KindNightly, Title: "Nightly gate, shard " + sh, Command: "faultline nightly --shard " + sh,
		Started: started, Shard: sh, Failed: failed}
	for name, v := range runs {
		run, err := rundir.NewDir(filepath.Join(dir, "runs"), name, started)
		if err != nil {
			t.Fatal(err)
		}
		if err := rundir.Write(run, &rundir.Results{Config: rundir.Config{Name: name, Target: "kvnode", Nodes: 3}, Verdict: v}); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, run)
		b.Runs = append(b.Runs, rel)
	}
	if err := reports.WriteBatch(dir, b); err != nil {
		t.Fatal(err)
	}
}

func TestMerge(t *testing.T) {
	valid, invalid, unknown := checker.Valid, checker.Invalid, checker.Unknown
	for _, tc := range []struct {
		name          string
		one, two      map[string]checker.Verdict
		failed        string // a run of shard two that could not run
		onlyOne       bool   // shard two's folder is not given
		code          int
		verdict, want string
	}{
		{name: "valid", one: map[string]checker.Verdict{"a-register": valid}, two: map[string]checker.Verdict{"b-kv": valid, "c-watch": valid},
			code: exitValid, verdict: "valid", want: "3 of 3 runs valid"},
		{name: "invalid", one: map[string]checker.Verdict{"a-register": valid}, two: map[string]checker.Verdict{"b-kv": invalid, "c-watch": unknown},
			code: exitInvalid, verdict: "invalid", want: "1 of 3 runs valid"},
		{name: "unknown", one: map[string]checker.Verdict{"a-register": unknown}, two: map[string]checker.Verdict{"b-kv": valid},
			code: exitUnknown, verdict: "unknown", want: "1 of 2 runs valid"},
		{name: "could not run", one: map[string]checker.Verdict{"a-register": valid}, two: map[string]checker.Verdict{"b-kv": valid},
			failed: "c-watch: image build failed", code: exitError, verdict: "unknown", want: "c-watch: image build failed"},
		{name: "missing shard", one: map[string]checker.Verdict{"a-register": valid}, onlyOne: true,
			code: exitError, verdict: "unknown", want: "shard 2/2: no results folder given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			one, two, out := filepath.Join(root, "one"), filepath.Join(root, "two"), filepath.Join(root, "merged")
			writeShard(t, one, "1/2", tc.one)
			dirs := []string{one}
			if !tc.onlyOne {
				var failed []string
				if tc.failed != "" {
					failed = append(failed, tc.failed)
				}
				writeShard(t, two, "2/2", tc.two, failed...)
				dirs = append(dirs, two)
			}
			code, _ := mergeCmd(context.Background(), append([]string{"--out", out}, dirs...))
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			b, err := reports.ReadBatch(out)
			if err != nil {
				t.Fatal(err)
			}
			if b.Kind != reports.KindNightly || b.Shard != "" || len(b.Runs) != len(tc.one)+len(tc.two) {
				t.Errorf("merged batch %+v, want a whole nightly gate of %d runs", b, len(tc.one)+len(tc.two))
			}
			// The merge is the night: it keeps the gate's summary for
			// the nights after it (the shards beside it are no nights).
			var g reports.Gate
			if raw, err := os.ReadFile(filepath.Join(out, reports.GateFile)); err != nil || json.Unmarshal(raw, &g) != nil ||
				g.Shard != "" || len(g.Scenarios) != len(b.Runs) || string(g.Verdict) != tc.verdict {
				t.Errorf("merged %s: %+v, %v; want the whole gate's %d runs, verdict %s", reports.GateFile, g, err, len(b.Runs), tc.verdict)
			}
			page, err := os.ReadFile(filepath.Join(out, rundir.ReportFile))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`<div class="verdict ` + tc.verdict + `">`, tc.want, "last 1 nights"} {
				if !strings.Contains(string(page), want) {
					t.Errorf("merged page lacks %q", want)
				}
			}
			// Every run is on the page and copied with it: the merged
			// folder stands alone, as a CI artifact must.
			for name, v := range mergeMaps(tc.one, tc.two) {
				if !strings.Contains(string(page), `href="runs/`+name+`/`) {
					t.Errorf("merged page does not link run %s", name)
				}
				r, err := rundir.Read(filepath.Join(out, "runs", name, "20261123T020000Z"))
				if err != nil || r.Verdict != v {
					t.Errorf("run %s in the merged folder: %v, %v; want its verdict %s", name, r, err, v)
				}
			}
		})
	}
}

func mergeMaps(a, b map[string]checker.Verdict) map[string]checker.Verdict {
	out := map[string]checker.Verdict{}
	for _, m := range []map[string]checker.Verdict{a, b} {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestMergeErrors(t *testing.T) {
	root := t.TempDir()
	one, two, twoAgain, other := filepath.Join(root, "one"), filepath.Join(root, "two"), filepath.Join(root, "two-again"), filepath.Join(root, "of3")
	writeShard(t, one, "1/2", map[string]checker.Verdict{"a": checker.Valid})
	writeShard(t, two, "2/2", map[string]checker.Verdict{"b": checker.Valid})
	writeShard(t, twoAgain, "2/2", map[string]checker.Verdict{"c": checker.Valid})
	writeShard(t, other, "2/3", map[string]checker.Verdict{"d": checker.Valid})
	sweep := filepath.Join(root, "sweep")
	if err := reports.WriteBatch(sweep, reports.Batch{Kind: reports.KindSweep, Title: "Scale sweep"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give the shards' results folders"},
		{[]string{filepath.Join(one, "runs")}, "is not a nightly results folder: it has no batch.json"},
		{[]string{sweep}, "holds a sweep, not a nightly gate"},
		{[]string{one, other}, "is shard 1/2 but " + other + " is shard 2/3"},
		{[]string{one, two, twoAgain}, "are both shard 2/2"},
		{[]string{one, one}, "are both shard 1/2"},
		{[]string{"--out", one, two}, "the merged folder"},
	} {
		code, err := mergeCmd(context.Background(), append([]string{"--results", filepath.Join(root, "results")}, tc.args...))
		if code != exitError || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("merge %v: exit %d, error %v; want exit 2 saying %q", tc.args, code, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "results")); !os.IsNotExist(err) {
		t.Errorf("a refused merge left a folder behind: %v", err)
	}
}

// TestMergeIntoResults: without --out the merged gate is one more nightly
// folder under the results root, listed in its run index.
func TestMergeIntoResults(t *testing.T) {
	root := t.TempDir()
	one, two, results := filepath.Join(root, "one"), filepath.Join(root, "two"), filepath.Join(root, "results")
	writeShard(t, one, "1/2", map[string]checker.Verdict{"a": checker.Valid})
	writeShard(t, two, "2/2", map[string]checker.Verdict{"b": checker.Valid})
	if code, err := mergeCmd(context.Background(), []string{"--results", results, one, two}); code != exitValid {
		t.Fatalf("exit %d, %v; want 0", code, err)
	}
	pages, _ := filepath.Glob(filepath.Join(results, "nightly", "*", rundir.ReportFile))
	if len(pages) != 1 {
		t.Fatalf("%d merged pages under %s, want 1", len(pages), results)
	}
	idx, err := os.ReadFile(filepath.Join(results, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(results, pages[0])
	if !strings.Contains(string(idx), `href="`+filepath.ToSlash(rel)+`"`) {
		t.Errorf("the run index does not link the merged gate %s", rel)
	}
}
