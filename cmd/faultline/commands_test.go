package main

import (
	"io"
	"strings"
	"testing"
	"time"
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
		{[]string{"--unsafe-bug", "stale-read"}, "only kvnode has bug switches"},
		{[]string{"--name", "../x"}, "want a plain folder name"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--nodes", "three"}, "invalid value"},
		{[]string{"--runtime", "local", "--nemesis", "partition-leader,pause-random+peer-latency"}, ""},
		{[]string{"--runtime", "vm"}, `--runtime "vm": want docker or local`},
		{[]string{"--runtime", "local", "--nemesis", "kill-leader+peer-loss"}, "peer-loss: needs --runtime docker"},
	} {
		test, err := runFlags(tc.args, io.Discard)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%v: error %v, want one saying %q", tc.args, err, tc.wantErr)
		case err == nil && test.Source == "":
			t.Errorf("%v: no source checkout found", tc.args)
		}
	}
}

func TestRunFlagsDefaults(t *testing.T) {
	test, err := runFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := test.Config
	if c.Target != "etcd" || c.Version != "v3.5.17" || c.Nodes != 3 || c.Workers != 10 ||
		time.Duration(c.TimeLimit) != time.Minute || time.Duration(c.NemesisEvery) != 10*time.Second ||
		c.Name != "etcd-register-kill-leader" || c.Command != "faultline run" || c.Runtime != "docker" {
		t.Fatalf("defaults: %+v", c)
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
