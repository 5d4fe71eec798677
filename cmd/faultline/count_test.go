package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/runner"
)

// fakeRuns returns a run function whose k-th run ends with verdicts[k]
// ("" could not run) and records the tests it was given.
func fakeRuns(verdicts ...checker.Verdict) (runFunc, *[]runner.Test) {
	var got []runner.Test
	return func(_ context.Context, t runner.Test) (*rundir.Results, string, error) {
		k := len(got)
		got = append(got, t)
		if verdicts[k] == "" {
			return nil, "", fmt.Errorf("%w: no engine", runner.ErrSetup)
		}
		return &rundir.Results{Config: t.Config, Verdict: verdicts[k]}, fmt.Sprintf("results/x/run%d", k+1), nil
	}, &got
}

// summaryLine is a line of the summary, not of a run's own output.
var summaryLine = regexp.MustCompile(`^run \d+: `)

func TestRepeat(t *testing.T) {
	const v, i, u = checker.Valid, checker.Invalid, checker.Unknown
	for _, tc := range []struct {
		name     string
		rep      repeat
		seed     int64
		verdicts []checker.Verdict
		runs     int
		code     int
		wantErr  string
	}{
		{"all valid", repeat{count: 3}, 10, []checker.Verdict{v, v, v}, 3, exitValid, ""},
		{"worst is invalid", repeat{count: 3}, 10, []checker.Verdict{v, i, u}, 3, exitInvalid, ""},
		{"unknown", repeat{count: 2}, 0, []checker.Verdict{u, v}, 2, exitUnknown, ""},
		{"fail fast", repeat{count: 4, failFast: true}, 10, []checker.Verdict{v, i, v, v}, 2, exitInvalid, ""},
		{"fail fast, none invalid", repeat{count: 3, failFast: true}, 10, []checker.Verdict{u, v, v}, 3, exitUnknown, ""},
		{"could not run", repeat{count: 3}, 10, []checker.Verdict{i, "", v}, 3, exitError, "1 of 3 runs could not run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			test := runDefaults()
			// Validated, as faultline run's test is: the etcd version is
			// cleared for another target.
			test.Config.Target = "kvnode"
			if err := test.Validate(); err != nil {
				t.Fatal(err)
			}
			test.Config.Seed = tc.seed
			test.Config.Command = "faultline run --count 9"
			run, got := fakeRuns(tc.verdicts...)
			var out bytes.Buffer
			code, err := tc.rep.run(context.Background(), test, run, &out)
			if code != tc.code || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("exit %d, error %v; want %d, %q", code, err, tc.code, tc.wantErr)
			}
			if len(*got) != tc.runs {
				t.Fatalf("%d runs, want %d", len(*got), tc.runs)
			}
			for k, rt := range *got {
				want := int64(0) // the runner picks each run's own
				if tc.seed != 0 {
					want = tc.seed + int64(k)
				}
				if rt.Config.Seed != want {
					t.Errorf("run %d has seed %d, want %d", k+1, rt.Config.Seed, want)
				}
				if c := rt.Config.Command; strings.Contains(c, "--count") || strings.Contains(c, "--etcd-version") || (want != 0) != strings.Contains(c, fmt.Sprintf("--seed %d", want)) {
					t.Errorf("run %d's rerun command %q does not repeat that run alone", k+1, c)
				}
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			var summary []string
			for _, l := range lines {
				if summaryLine.MatchString(l) {
					summary = append(summary, l)
				}
			}
			if len(summary) != tc.runs {
				t.Fatalf("summary %q, want a line per run", summary)
			}
			for k, l := range summary {
				want := "could not run"
				if tc.verdicts[k] != "" {
					want = fmt.Sprintf("%s seed", tc.verdicts[k])
					if !strings.HasSuffix(l, fmt.Sprintf("results/x/run%d", k+1)) {
						t.Errorf("line %q does not give the run's folder", l)
					}
				}
				if !strings.Contains(strings.Join(strings.Fields(l), " "), want) {
					t.Errorf("line %q, want it to say %q", l, want)
				}
			}
			if stopped := slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "--fail-fast") }); stopped != (tc.runs < tc.rep.count) {
				t.Errorf("output %q: says it stopped early: %v", out.String(), stopped)
			}
		})
	}
}

// TestRepeatInterrupted: a run that ctx ended ends the loop.
func TestRepeatInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	run := func(context.Context, runner.Test) (*rundir.Results, string, error) {
		n++
		cancel()
		return nil, "results/x/run1", context.Canceled
	}
	code, err := repeat{count: 3}.run(ctx, runDefaults(), run, io.Discard)
	if n != 1 || code != exitError || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "results/x/run1") {
		t.Fatalf("%d runs, exit %d, error %v; want one, 2, and where the history is", n, code, err)
	}
}

func TestCountFlag(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
		rep     repeat
	}{
		{nil, "", repeat{count: 1}},
		{[]string{"--count", "5", "--fail-fast", "--seed", "42"}, "", repeat{count: 5, failFast: true}},
		{[]string{"--count", "0"}, "--count 0: want the number of runs, 1 or more", repeat{}},
		{[]string{"--count", "-2"}, "--count -2", repeat{}},
	} {
		test, rep, err := runFlags(tc.args, io.Discard)
		if checkErr(t, tc.args, err, tc.wantErr) && rep != tc.rep {
			t.Errorf("%v: %+v, want %+v", tc.args, rep, tc.rep)
		}
		if tc.rep.failFast && test.Config.Seed != 42 {
			t.Errorf("%v: seed %d, want 42", tc.args, test.Config.Seed)
		}
	}
	// --count belongs to faultline run alone, not to a test's settings.
	if err := parseRunFlags(new(runner.Test), []string{"--count", "2"}, io.Discard); err == nil {
		t.Error("the batch commands' run flags accept --count")
	}
}
