package main

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/rundir"
)

func TestRunFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string // empty: the flags are accepted
	}{
		{nil, ""},
		{[]string{"--target", "etcd", "--nodes", "5", "--workload", "register", "--nemesis", "kill-leader", "--time-limit", "2m"}, ""},
		{[]string{"--target", "kvnode", "--unsafe-bug", "stale-read"}, ""},
		{[]string{"--nemesis", "none", "--nemesis-interval", "0s"}, ""},
		{[]string{"--nodes", "0"}, "--nodes 0: want 1 to 9"},
		{[]string{"--nodes", "10"}, "--nodes 10: want 1 to 9"},
		{[]string{"--target", "zookeeper"}, `unknown target "zookeeper"`},
		{[]string{"--etcd-version", "3.5"}, `etcd version "3.5"`},
		{[]string{"--workload", "bank"}, `unknown workload "bank"`},
		{[]string{"--nemesis", "meteor"}, `unknown nemesis "meteor"`},
		{[]string{"--time-limit", "0s"}, "--time-limit 0s"},
		{[]string{"--unsafe-bug", "stale-read"}, "etcd has no bug switches (kvnode has)"},
		{[]string{"--name", "../x"}, "want a plain folder name"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--nodes", "three"}, "invalid value"},
		{[]string{"--runtime", "local", "--nemesis", "partition-leader,pause-random+peer-latency"}, ""},
		{[]string{"--runtime", "vm"}, `--runtime "vm": want docker or local`},
		{[]string{"--runtime", "local", "--nemesis", "kill-leader+peer-loss"}, "peer-loss: needs --runtime docker"},
		{[]string{"--member-flag", "--snapshot-count=100", "--member-flag=--snapshot-catchup-entries=50"}, ""},
		{[]string{"--member-flag", "snapshot-count=100"}, `--member-flag "snapshot-count=100": want one word beginning with --`},
		{[]string{"--member-flag", "--data-dir=/tmp/x"}, `--member-flag "--data-dir=/tmp/x": faultline sets --data-dir itself`},
		{[]string{"--target", "kvnode", "--member-flag", "--unsafe-bug=stale-read"}, "use --unsafe-bug NAME"},
	} {
		test, _, err := runFlags(tc.args, io.Discard)
		if checkErr(t, tc.args, err, tc.wantErr) && test.Source == "" {
			t.Errorf("%v: no source checkout found", tc.args)
		}
	}
}

// checkErr reports a test error unless err is nil when want is empty, or
// says want; it returns whether the arguments were accepted as wanted.
func checkErr(t *testing.T, args []string, err error, want string) bool {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%v: %v", args, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%v: error %v, want one saying %q", args, err, want)
	default:
		return err == nil
	}
	return false
}

func TestRunFlagsDefaults(t *testing.T) {
	test, _, err := runFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := test.Config
	if c.Target != "etcd" || c.Version != "v3.6.16" || c.Nodes != 3 || c.Workers != 10 ||
		time.Duration(c.TimeLimit) != time.Minute || time.Duration(c.NemesisInterval) != 10*time.Second ||
		c.Name != "etcd-register-kill-leader" || c.Command != "faultline run" || c.Runtime != "docker" {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestParseRunFlagsOnto: run flags parsed onto a test a batch command
// built change only what they name (faultline sweep -- --nemesis-interval
// 5s keeps the sweep's settings), and a schedule among them replaces the
// nemesis settings not given with it.
func TestParseRunFlagsOnto(t *testing.T) {
	base := runDefaults()
	base.Config.TimeLimit, base.Config.Nemesis = rundir.Duration(20*time.Second), "partition-random"
	test := base
	if err := parseRunFlags(&test, []string{"--nemesis-interval", "5s"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := base.Config
	want.NemesisInterval = rundir.Duration(5 * time.Second)
	if !reflect.DeepEqual(test.Config, want) {
		t.Fatalf("parsed onto the base: %+v, want %+v", test.Config, want)
	}
	test = base
	if err := parseRunFlags(&test, []string{"--nemesis-schedule", "s.json", "--nemesis-duration", "1s"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	want = base.Config
	want.ScheduleFile, want.Nemesis, want.NemesisInterval, want.NemesisDuration = "s.json", "", 0, rundir.Duration(time.Second)
	if !reflect.DeepEqual(test.Config, want) {
		t.Fatalf("with a schedule: %+v, want %+v", test.Config, want)
	}
}

func TestSplitRunArgs(t *testing.T) {
	own, run := splitRunArgs([]string{"--nodes", "3,5", "--", "--workers", "20", "--", "x"})
	if strings.Join(own, " ") != "--nodes 3,5" || strings.Join(run, " ") != "--workers 20 -- x" {
		t.Fatalf("own %q, run %q", own, run)
	}
	if own, run := splitRunArgs([]string{"--nodes", "3"}); len(own) != 2 || run != nil {
		t.Fatalf("no --: own %q, run %q", own, run)
	}
}

func TestRunFlagsSchedule(t *testing.T) {
	const example = "../../ci/schedules/mixed.json"
	test, _, err := runFlags([]string{"--nemesis-schedule", example, "--nodes", "5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := test.Config
	if c.Schedule == nil || len(c.Schedule.Steps) != 3 || !c.Schedule.Repeat || c.Schedule.Jitter != 0.2 ||
		c.Schedule.Steps[1].Fault != "kill-random+pause-leader" || time.Duration(c.Schedule.Steps[2].For) != 6*time.Second {
		t.Fatalf("schedule %+v", c.Schedule)
	}
	if c.ScheduleFile != example || c.Nemesis != "partition-leader,kill-random+pause-leader,peer-latency=200ms:50ms" ||
		c.NemesisInterval != 0 || c.NemesisDuration != 0 || c.Name != "etcd-register-mixed" {
		t.Fatalf("config %+v", c)
	}

	for _, tc := range []struct {
		args    []string
		wantErr string // empty: the flags are accepted
	}{
		{[]string{"--nemesis-schedule", example, "--nemesis", "kill-leader"}, "cannot be combined with --nemesis: give the schedule file or those flags, not both"},
		{[]string{"--nemesis-interval", "5s", "--nemesis-schedule", example}, "cannot be combined with --nemesis-interval:"},
		{[]string{"--nemesis-schedule", example, "--nemesis-duration", "5s"}, "cannot be combined with --nemesis-duration:"},
		{[]string{"--nemesis-schedule", example, "--nemesis", "none", "--nemesis-interval", "1s", "--nemesis-duration", "1s"},
			"cannot be combined with --nemesis, --nemesis-interval, --nemesis-duration:"},
		{[]string{"--nemesis-schedule", ""}, "--nemesis-schedule: want the path of a schedule file"},
		{[]string{"--nemesis-schedule", example, "--runtime", "local"}, ""},
	} {
		_, _, err := runFlags(tc.args, io.Discard)
		checkErr(t, tc.args, err, tc.wantErr)
	}
}

// TestMemberFlags: --member-flag, given many times, keeps every word in
// order in the config, and the rerun command gives each again; parsed onto
// a base that has some, it adds to them without touching the base.
func TestMemberFlags(t *testing.T) {
	args := []string{"--target", "kvnode", "--member-flag", "--snapshot-count=100", "--member-flag", "--snapshot-catchup-entries=50"}
	test, _, err := runFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--snapshot-count=100", "--snapshot-catchup-entries=50"}
	if !reflect.DeepEqual(test.Config.MemberFlags, want) {
		t.Fatalf("member flags %q, want %q", test.Config.MemberFlags, want)
	}
	cmd := runCommand(test.Config)
	if !strings.Contains(cmd, "--member-flag --snapshot-count=100 --member-flag --snapshot-catchup-entries=50") {
		t.Errorf("rerun command %q does not give both member flags", cmd)
	}
	again, _, err := runFlags(strings.Fields(cmd)[2:], io.Discard)
	if err != nil || !reflect.DeepEqual(again.Config.MemberFlags, want) {
		t.Errorf("the rerun command's flags: %q, %v", again.Config.MemberFlags, err)
	}

	base := runDefaults()
	base.Config.MemberFlags = make([]string, 1, 4)
	base.Config.MemberFlags[0] = "--snapshot-count=100"
	one, two := base, base
	if err := parseRunFlags(&one, []string{"--member-flag", "--a=1"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := parseRunFlags(&two, []string{"--member-flag", "--b=2"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(one.Config.MemberFlags, " ") + "; " + strings.Join(two.Config.MemberFlags, " "); got != "--snapshot-count=100 --a=1; --snapshot-count=100 --b=2" {
		t.Errorf("two tests from one base: %s", got)
	}
}
