package main

import (
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
		again, err := runFlags(words[2:], io.Discard)
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
	} {
		p := filepath.Join(t.TempDir(), "m.json")
		os.WriteFile(p, []byte(tc.body), 0o644)
		if _, _, err := readMatrix(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.body, err, tc.want)
		}
	}
}
