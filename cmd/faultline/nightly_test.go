package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/faultline/faultline/runner"
)

// TestNightlyMatrix keeps the checked-in gate runnable: every run it
// expands to passes faultline run's own validation, and the command each
// records runs that same test.
func TestNightlyMatrix(t *testing.T) {
	m, tests, err := readMatrix("../../ci/nightly.json")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(m.Targets) * len(m.Nodes) * len(m.Scenarios); len(tests) != want {
		t.Fatalf("%d runs, want %d", len(tests), want)
	}
	names := map[string]bool{}
	for _, test := range tests {
		if names[test.Config.Name] {
			t.Errorf("two runs named %s", test.Config.Name)
		}
		names[test.Config.Name] = true
		words := strings.Fields(test.Config.Command)
		again, _, err := runFlags(words[2:], io.Discard)
		if err != nil {
			t.Errorf("%s: %v", test.Config.Command, err)
			continue
		}
		again.Config.Command = test.Config.Command
		if !reflect.DeepEqual(again.Config, test.Config) {
			t.Errorf("%s runs %+v, want %+v", test.Config.Command, again.Config, test.Config)
		}
	}
	if !slices.ContainsFunc(tests, func(test runner.Test) bool { return test.Config.ScheduleFile == "../../ci/schedules/mixed.json" }) {
		t.Error("no scenario runs the example schedule, named relative to the matrix")
	}
	versions := map[string]bool{}
	for _, target := range m.Targets {
		if name, v, ok := strings.Cut(target, "@"); ok && name == "etcd" {
			versions[v] = true
		}
	}
	if len(versions) < 2 {
		t.Errorf("the gate tests %d etcd versions, want two", len(versions))
	}
}

func TestReadMatrixErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"targets":["etcd@v3.5.17"],"nodes":[3],"time_limit":"30s","scenarios":[]}`, "at least one"},
		{`{"targets":["etcd"],"nodes":[3],"time_limit":"soon","scenarios":[{"workload":"register","nemesis":"none"}]}`, "time_limit"},
		{`{"targets":["etcd"],"nodes":[3],"time_limit":"1s","scenarios":[{"workload":"register","nemesis":"none"}],"extra":1}`, "unknown field"},
		{`{"targets":`, "unexpected EOF"},
		{`{"targets":["etcd"],"nodes":[3],"time_limit":"1s","scenarios":[{"workload":"kv","nemesis":"none","schedule":"s.json"}]}`, "scenario 1: want either nemesis or schedule"},
		{`{"targets":["etcd"],"nodes":[3],"time_limit":"1s","scenarios":[{"workload":"kv"}]}`, "scenario 1: want either nemesis or schedule"},
		{`{"targets":["kvnode"],"nodes":[3],"time_limit":"1s","scenarios":[{"workload":"kv","nemesis":"none"},{"workload":"kv","nemesis":"meteor"}]}`,
			`has runs faultline cannot do:
  kvnode-3n-kv-meteor (scenario 2): --nemesis: unknown nemesis "meteor"`},
		{`{"targets":["kvnode"],"nodes":[3],"time_limit":"1s","scenarios":[{"workload":"kv","nemesis":"none","args":["--nodes","0"]}]}`,
			"kvnode-3n-kv-none (scenario 1): --nodes 0: want 1 to 9"},
		{`{"targets":["kvnode"],"nodes":[3],"time_limit":"1s","scenarios":[{"workload":"kv","schedule":"s.json","args":["--nemesis-interval","1s"]}]}`,
			"kvnode-3n-kv-s (scenario 1): --nemesis-schedule sets the faults and their windows, so it cannot be combined with --nemesis-interval:"},
		{`{"targets":["kvnode"],"nodes":[3],"time_limit":"1s","scenarios":[{"workload":"kv","nemesis":"none","vary":[["--nodes","5"],["--nodes","0"]]}]}`,
			"kvnode-3n-kv-none (scenario 1, vary set 2): --nodes 0: want 1 to 9"},
		{`{"targets":["kvnode"],"nodes":[3],"time_limit":"1s","scenarios":[{"workload":"kv","nemesis":"none","args":["--member-flag","--name=x"]}]}`,
			`kvnode-3n-kv-none (scenario 1): --member-flag "--name=x": faultline sets --name itself`},
	} {
		p := filepath.Join(t.TempDir(), "m.json")
		os.WriteFile(p, []byte(tc.body), 0o644)
		if _, _, err := readMatrix(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.body, err, tc.want)
		}
	}
}

// TestMatrixMemberFlags: a scenario's args may give member flags, which
// its runs record and their rerun commands repeat.
func TestMatrixMemberFlags(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.json")
	os.WriteFile(p, []byte(`{"targets":["kvnode","etcd"],"nodes":[3],"time_limit":"1s","scenarios":[
		{"workload":"kv,watch","nemesis":"partition-member=follower","args":["--member-flag","--snapshot-count=100"]}]}`), 0o644)
	_, tests, err := readMatrix(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, test := range tests {
		if c := test.Config; !slices.Equal(c.MemberFlags, []string{"--snapshot-count=100"}) || !strings.Contains(c.Command, " --member-flag --snapshot-count=100") {
			t.Errorf("%s: member flags %q, command %q", c.Name, c.MemberFlags, c.Command)
		}
	}
}

// TestNightlyShards: for any number of shards, the shards of the
// checked-in matrix together run every scenario exactly once, scenario k
// on shard ((k-1) mod n)+1.
func TestNightlyShards(t *testing.T) {
	_, tests, err := readMatrix("../../ci/nightly.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 4, 7, len(tests)} {
		ran := map[string]int{}
		for i := 1; i <= n; i++ {
			sh, err := parseShard(fmt.Sprintf("%d/%d", i, n))
			if err != nil {
				t.Fatal(err)
			}
			picked := sh.pick(tests)
			if want := (len(tests) + n - i) / n; len(picked) != want {
				t.Errorf("shard %s runs %d scenarios, want %d", sh, len(picked), want)
			}
			for j, test := range picked {
				if k := i + j*n; test.Config.Name != tests[k-1].Config.Name {
					t.Errorf("shard %s's run %d is %s, want scenario %d, %s", sh, j+1, test.Config.Name, k, tests[k-1].Config.Name)
				}
				ran[test.Config.Name]++
			}
		}
		for _, test := range tests {
			if ran[test.Config.Name] != 1 {
				t.Errorf("%d shards run %s %d times, want once", n, test.Config.Name, ran[test.Config.Name])
			}
		}
	}
}

func TestNightlyShardFlag(t *testing.T) {
	for _, bad := range []string{"0/2", "3/2", "x", "2", "1/0", "-1/2", "1/2/3"} {
		code, err := nightlyCmd(context.Background(), []string{"--matrix", "../../ci/nightly.json", "--dry-run", "--shard", bad})
		if code != exitError || err == nil || !strings.Contains(err.Error(), "--shard") || !strings.Contains(err.Error(), "want i/n") {
			t.Errorf("--shard %s: exit %d, error %v; want exit 2 naming --shard and what to give", bad, code, err)
		}
	}
	_, tests, err := readMatrix("../../ci/nightly.json")
	if err != nil {
		t.Fatal(err)
	}
	n := len(tests) + 1
	code, err := nightlyCmd(context.Background(), []string{"--matrix", "../../ci/nightly.json", "--dry-run", "--shard", fmt.Sprintf("%d/%d", n, n)})
	if code != exitError || err == nil || !strings.Contains(err.Error(), fmt.Sprintf("give at most %d shards", len(tests))) {
		t.Errorf("--shard %d/%d: exit %d, error %v; want exit 2 saying how many shards the matrix has runs for", n, n, code, err)
	}
}
