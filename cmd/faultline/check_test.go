package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/rundir"
)

// copyRun copies the small real run kept as the reports' fixture into a
// fresh directory, its history cut to its first lines lines (all when
// lines < 0) and then torn in the middle of the next, as a killed harness
// leaves it.
func copyRun(t *testing.T, lines int) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("..", "..", "reports", "testdata", "smallrun")
	for _, f := range []string{rundir.HistoryFile, rundir.ResultsFile} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == rundir.HistoryFile && lines >= 0 {
			ls := bytes.SplitAfter(b, []byte("\n"))
			torn := ls[lines][:len(ls[lines])/2]
			b = append(bytes.Join(ls[:lines], nil), torn...)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCheckInterruptedRun is faultline check on a run whose harness was
// killed part way: results.json and the report's banner say how much was
// recorded, that no final heal happened and recovery was not checked, and
// the verdict (of what was recorded) is not valid. The whole run says none
// of it.
func TestCheckInterruptedRun(t *testing.T) {
	cut := copyRun(t, 400) // of 740 lines: about 4.5 s of the 8 s
	// As a killed harness leaves it: it never learnt how long it ran.
	res, err := rundir.Read(cut)
	if err != nil {
		t.Fatal(err)
	}
	res.Duration = 0
	if err := rundir.Write(cut, res); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"check", cut}); code != exitUnknown {
		t.Errorf("faultline check of a cut run exits %d, want %d (unknown)", code, exitUnknown)
	}
	res, err = rundir.Read(cut)
	if err != nil {
		t.Fatal(err)
	}
	u := res.Unfinished
	if u == nil {
		t.Fatal("results.json does not say the run did not finish")
	}
	if u.Recorded <= 0 || u.Recorded >= u.TimeLimit || u.TimeLimit != res.Config.TimeLimit {
		t.Errorf("recorded %s of %s, want a part of the time limit %s", u.Recorded, u.TimeLimit, res.Config.TimeLimit)
	}
	for _, want := range []string{"recorded until ", " of its 8s time limit", "no final heal", "recovery", "not checked", "the verdict is that of what was recorded"} {
		if !strings.Contains(strings.ToLower(u.Summary), strings.ToLower(want)) {
			t.Errorf("summary %q lacks %q", u.Summary, want)
		}
	}
	page, err := os.ReadFile(filepath.Join(cut, rundir.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `<div class="unfinished" role="alert"><strong>This run did not finish:</strong> `) ||
		!strings.Contains(string(page), fmt.Sprintf("ran %.1f s recorded", time.Duration(u.Recorded).Seconds())) ||
		!strings.Contains(string(page), "recorded until ") {
		t.Error("the report has no banner saying the run did not finish")
	}

	whole := copyRun(t, -1)
	run([]string{"check", whole})
	res, err = rundir.Read(whole)
	if err != nil {
		t.Fatal(err)
	}
	if res.Unfinished != nil {
		t.Errorf("the whole run is said to be unfinished: %+v", res.Unfinished)
	}
	page, _ = os.ReadFile(filepath.Join(whole, rundir.ReportFile))
	if strings.Contains(string(page), "did not finish") {
		t.Error("the whole run's report says it did not finish")
	}
}
