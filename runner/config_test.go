package runner

import (
	"reflect"
	"strings"
	"testing"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/rundir"
)

// validConfig is a config Validate accepts as it is.
func validConfig() rundir.Config { return DefaultConfig() }

// scheduled is validConfig with the schedule file path instead of the
// nemesis settings, as a --nemesis-schedule leaves them.
func scheduled(path string) func(*rundir.Config) {
	return func(c *rundir.Config) {
		c.ScheduleFile, c.Nemesis, c.NemesisInterval, c.NemesisDuration = path, "", 0, 0
	}
}

func TestValidate(t *testing.T) {
	ring := writeSchedule(t, `{"steps": [{"fault": "partition-majorities-ring", "quiet": "5s", "for": "5s"}]}`)
	lossy := writeSchedule(t, `{"steps": [{"fault": "kill-leader+peer-loss", "quiet": "5s", "for": "5s"}]}`)
	for _, tc := range []struct {
		name    string
		change  func(*rundir.Config)
		wantErr string // empty: the config is accepted
	}{
		{"valid", func(*rundir.Config) {}, ""},
		{"kvnode bug", func(c *rundir.Config) { c.Target, c.UnsafeBug = "kvnode", "stale-read" }, ""},
		{"no nemesis, no interval", func(c *rundir.Config) { c.Nemesis, c.NemesisInterval = "none", 0 }, ""},
		{"nodes", func(c *rundir.Config) { c.Nodes = 10 }, "--nodes 10: want 1 to 9"},
		{"target", func(c *rundir.Config) { c.Target = "zookeeper" }, `--target: unknown target "zookeeper"`},
		{"version", func(c *rundir.Config) { c.Version = "3.5" }, `etcd version "3.5"`},
		{"workload", func(c *rundir.Config) { c.Workload = "bank" }, `--workload: unknown workload "bank"`},
		{"nemesis", func(c *rundir.Config) { c.Nemesis = "meteor" }, `--nemesis: unknown nemesis "meteor"`},
		{"bug on etcd", func(c *rundir.Config) { c.UnsafeBug = "stale-read" }, `--unsafe-bug "stale-read": etcd has no bug switches (kvnode has)`},
		{"interval", func(c *rundir.Config) { c.NemesisInterval = 0 }, "--nemesis-interval 0s: want a positive duration such as 10s"},
		{"check timeout", func(c *rundir.Config) { c.CheckTimeout = 0 }, "--check-timeout 0s: want a positive duration such as 2m"},
		{"check memory", func(c *rundir.Config) { c.CheckMemory = -1 }, "--check-memory -1: want GiB above 0"},
		{"name", func(c *rundir.Config) { c.Name = "../x" }, `--name "../x": want a plain folder name`},
		{"runtime", func(c *rundir.Config) { c.Runtime = "vm" }, `--runtime "vm": want docker or local`},
		{"local peer-loss", func(c *rundir.Config) { c.Runtime, c.Nemesis = compose.Local, "kill-leader+peer-loss" }, "--nemesis: peer-loss: needs --runtime docker"},
		{"strict disk", func(c *rundir.Config) { c.Nemesis, c.DiskMode = "power-loss-all", "strict" }, ""},
		{"disk mode without a disk fault", func(c *rundir.Config) { c.DiskMode = "strict" },
			"--disk-mode strict: only runs with a disk fault (power-loss-*, disk-*) have a filesystem layer to set"},
		{"disk mode", func(c *rundir.Config) { c.Nemesis, c.DiskMode = "power-loss-all", "xfs" }, `--disk-mode: disk mode "xfs": want ext4`},
		{"member flags", func(c *rundir.Config) {
			c.MemberFlags = []string{"--snapshot-count=100", "--experimental-snapshot-catchup-entries=50"}
		}, ""},
		{"member flag, two words", func(c *rundir.Config) { c.MemberFlags = []string{"--snapshot-count", "100"} },
			`--member-flag "100": want one word beginning with --, the flag and its value, such as --snapshot-count=100`},
		{"member flag the harness sets", func(c *rundir.Config) { c.MemberFlags = []string{"--initial-cluster-state=existing", "-name"} },
			"--member-flag \"--initial-cluster-state=existing\": faultline sets --initial-cluster-state itself for every member (their names, data directories, addresses and initial cluster)\n  --member-flag \"-name\": want one word beginning with --"},
		{"member bug flag", func(c *rundir.Config) { c.Target, c.MemberFlags = "kvnode", []string{"--unsafe-bug=stale-read"} },
			`--member-flag "--unsafe-bug=stale-read": faultline sets --unsafe-bug itself; use --unsafe-bug NAME`},
		{"every problem", func(c *rundir.Config) { c.Keys, c.OpsPerKey, c.Rate = 0, 0, -1 },
			"--keys 0: want at least 1\n  --ops-per-key 0: want at least 1\n  --rate -1: want 0 (no limit) or more"},
		{"ring schedule", func(c *rundir.Config) { scheduled(ring)(c); c.Nodes = 5 }, ""},
		{"ring schedule, 3 members", scheduled(ring),
			"--nemesis-schedule: " + ring + ": step 1: fault \"partition-majorities-ring\": partition-majorities-ring needs at least 4 members, the cluster has 3"},
		{"lossy schedule, local", func(c *rundir.Config) { scheduled(lossy)(c); c.Runtime = compose.Local }, "--nemesis-schedule: peer-loss: needs --runtime docker"},
		{"no schedule file", scheduled("no-such.json"), "--nemesis-schedule: no-such.json: reading the schedule: no such file or directory"},
		{"schedule and nemesis", func(c *rundir.Config) { c.ScheduleFile = ring; c.Nodes = 5 },
			"--nemesis-schedule sets the faults and their windows, so it cannot be combined with --nemesis, --nemesis-interval, --nemesis-duration: give the schedule file or those flags, not both"},
	} {
		test := Test{Config: validConfig()}
		tc.change(&test.Config)
		err := test.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestValidateFills: what Validate derives, and that validating again
// changes nothing.
func TestValidateFills(t *testing.T) {
	test := Test{Config: validConfig()}
	test.Config.Target = "kvnode"
	if err := test.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := test.Config; c.Version != "" || c.Name != "kvnode-register-kill-leader" {
		t.Fatalf("kvnode: version %q, name %q", c.Version, c.Name)
	}

	path := writeSchedule(t, `{"steps": [{"fault": "kill-leader", "quiet": "5s", "for": "5s"}, {"fault": "pause-random", "quiet": "5s", "for": "5s"}]}`)
	test = Test{Config: validConfig()}
	scheduled(path)(&test.Config)
	if err := test.Validate(); err != nil {
		t.Fatal(err)
	}
	c := test.Config
	if c.Schedule == nil || len(c.Schedule.Steps) != 2 || c.Nemesis != "kill-leader,pause-random" || c.Name != "etcd-register-sched" {
		t.Fatalf("schedule %+v, nemesis %q, name %q", c.Schedule, c.Nemesis, c.Name)
	}
	if err := test.Validate(); err != nil || !reflect.DeepEqual(test.Config, c) {
		t.Fatalf("validated again: %v, %+v, want %+v", err, test.Config, c)
	}
}
