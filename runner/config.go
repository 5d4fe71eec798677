package runner

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/diskfs"
	"github.com/faultline/faultline/nemesis"
	"github.com/faultline/faultline/rundir"
	"github.com/faultline/faultline/workloads"
)

// DefaultConfig is the test faultline run runs when no flag says
// otherwise: etcd's default release, 3 members in containers, the register
// workload for a minute while the leader is killed every 10 s.
func DefaultConfig() rundir.Config {
	return rundir.Config{
		Target: "etcd", Version: compose.DefaultEtcdVersion, Runtime: compose.Docker, Nodes: 3,
		Workload: "register", Nemesis: "kill-leader", TimeLimit: rundir.Duration(60 * time.Second),
		NemesisInterval: rundir.Duration(10 * time.Second), NemesisDuration: rundir.Duration(5 * time.Second),
		Workers: 10, Keys: 8, OpsPerKey: 1000, OpTimeout: rundir.Duration(2 * time.Second),
		CheckTimeout: rundir.Duration(DefaultCheckTimeout), ReadConsistency: "linearizable", ClientMode: "balanced",
	}
}

// Validate checks t's config, every entry point's one check, and fills in
// what follows from it: a schedule file is read into Schedule and Nemesis
// lists its faults, Version is cleared unless the target is etcd, and an
// empty Name becomes target-workload-nemesis (or the schedule file's name
// for the nemesis). The error lists every problem, one a line, each naming
// the faultline run flag that sets the field, since that is what users
// type, and what to give instead. Validating a validated test changes
// nothing: a schedule already read is kept, not read again.
//
// Validate lives here, not on rundir.Config, because it asks the targets,
// workloads and faults what they accept; rundir stays the schema that
// reports read without them.
func (t *Test) Validate() error {
	c := &t.Config
	var problems []string
	check := func(bad bool, format string, a ...any) {
		if bad {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	if c.Target != "etcd" {
		// The version flag has a default; it only means something for etcd.
		c.Version = ""
	}
	target, err := compose.ParseTarget(c.Target, c.Version)
	if err != nil {
		problems = append(problems, "--target: "+err.Error())
	} else {
		check(c.UnsafeBug != "" && target.BugFlag == "", "--unsafe-bug %q: %s has no bug switches (kvnode has)", c.UnsafeBug, target.Name)
		for _, f := range c.MemberFlags {
			if err := target.CheckMemberFlag(f); err != nil {
				problems = append(problems, "--member-flag "+err.Error())
			}
		}
	}
	check(c.Nodes < 1 || c.Nodes > compose.MaxNodes, "--nodes %d: want 1 to %d", c.Nodes, compose.MaxNodes)
	if _, err := workloads.Lookup(c.Workload); err != nil {
		problems = append(problems, "--workload: "+err.Error())
	}
	problems = append(problems, validateNemesis(c)...)
	check(c.Runtime != compose.Docker && c.Runtime != compose.Local, "--runtime %q: want docker or local", c.Runtime)
	check(!slices.Contains([]string{"linearizable", "serializable", "mixed"}, c.ReadConsistency),
		"--read-consistency %q: want linearizable, serializable or mixed", c.ReadConsistency)
	check(c.ClientMode != "balanced" && c.ClientMode != "pinned", "--client-mode %q: want balanced or pinned", c.ClientMode)
	if c.DiskMode != "" {
		_, err := diskfs.ParseMode(c.DiskMode)
		check(err != nil, "--disk-mode: %v", err)
		check(err == nil && !needsDisk(*c), "--disk-mode %s: only runs with a disk fault (power-loss-*, disk-*) have a filesystem layer to set", c.DiskMode)
	} else if needsDisk(*c) {
		// What the file systems stores run on do, not the least POSIX
		// promises: every etcd release renames a snapshot it received
		// into place without fsyncing the directory, which ext4 and xfs
		// forgive and strict does not, so a strict gate fails etcd.
		c.DiskMode = diskfs.Ext4.String()
	}
	check(c.CompactInterval < 0, "--compact-interval %s: want 0 (never) or a positive duration such as 5s", time.Duration(c.CompactInterval))
	if n := len(strings.Split(c.Workload, ",")); n > 1 {
		check(c.Workers < n, "--workers %d: %d workloads need at least one worker each", c.Workers, n)
	}
	check(c.TimeLimit <= 0, "--time-limit %s: want a positive duration such as 60s", time.Duration(c.TimeLimit))
	check(c.ScheduleFile == "" && c.Nemesis != "none" && c.NemesisInterval <= 0, "--nemesis-interval %s: want a positive duration such as 10s", time.Duration(c.NemesisInterval))
	check(c.ScheduleFile == "" && c.Nemesis != "none" && c.NemesisDuration <= 0, "--nemesis-duration %s: want a positive duration such as 5s", time.Duration(c.NemesisDuration))
	check(c.Workers < 1 || c.Workers > 1000, "--workers %d: want 1 to 1000", c.Workers)
	check(c.Keys < 1, "--keys %d: want at least 1", c.Keys)
	check(c.OpsPerKey < 1, "--ops-per-key %d: want at least 1", c.OpsPerKey)
	check(c.Rate < 0, "--rate %g: want 0 (no limit) or more", c.Rate)
	check(c.OpTimeout <= 0, "--op-timeout %s: want a positive duration such as 2s", time.Duration(c.OpTimeout))
	check(c.CheckTimeout <= 0, "--check-timeout %s: want a positive duration such as 2m", time.Duration(c.CheckTimeout))
	if err := CheckMemoryError(c.CheckMemory); err != nil {
		problems = append(problems, err.Error())
	}
	check(strings.ContainsAny(c.Name, `/\`) || c.Name == "." || c.Name == "..", "--name %q: want a plain folder name", c.Name)
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n  "))
	}
	if c.Name == "" {
		nem := c.Nemesis
		if c.Schedule != nil {
			nem = strings.TrimSuffix(filepath.Base(c.ScheduleFile), filepath.Ext(c.ScheduleFile))
		}
		// A target file's path is no folder name; its name field is.
		c.Name = target.Name + "-" + c.Workload + "-" + nem
	}
	return nil
}

// validateNemesis checks the faults: Nemesis, or with ScheduleFile the
// schedule, which sets the faults and their windows alone, so Nemesis,
// NemesisInterval and NemesisDuration must be unset until it is read.
func validateNemesis(c *rundir.Config) []string {
	if c.ScheduleFile == "" {
		faults, err := nemesis.Parse(c.Nemesis)
		if err == nil {
			err = errors.Join(nemesis.Fits(faults, c.Nodes), nemesis.Supported(faults, c.Runtime))
		}
		if err != nil {
			return []string{"--nemesis: " + err.Error()}
		}
		return nil
	}
	var problems []string
	s := c.Schedule
	if s == nil {
		var clash []string
		for _, f := range []struct {
			flag string
			set  bool
		}{{"--nemesis", c.Nemesis != ""}, {"--nemesis-interval", c.NemesisInterval != 0}, {"--nemesis-duration", c.NemesisDuration != 0}} {
			if f.set {
				clash = append(clash, f.flag)
			}
		}
		if len(clash) > 0 {
			problems = append(problems, fmt.Sprintf("--nemesis-schedule sets the faults and their windows, so it cannot be combined with %s: give the schedule file or those flags, not both",
				strings.Join(clash, ", ")))
		}
		var err error
		if s, err = ReadSchedule(c.ScheduleFile, c.Nodes); err != nil {
			return append(problems, "--nemesis-schedule: "+err.Error())
		}
		if len(clash) == 0 {
			c.Schedule, c.Nemesis = s, s.Faults()
		}
	}
	if faults, err := nemesis.Parse(s.Faults()); err == nil {
		if err := nemesis.Supported(faults, c.Runtime); err != nil {
			problems = append(problems, "--nemesis-schedule: "+err.Error())
		}
	}
	return problems
}
