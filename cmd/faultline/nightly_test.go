package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNightlyMatrix keeps the checked-in gate runnable: every run it
// expands to passes faultline run's own validation.
func TestNightlyMatrix(t *testing.T) {
	m, runs, err := readMatrix("../../ci/nightly.json")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(m.Targets) * len(m.Nodes) * len(m.Scenarios); len(runs) != want {
		t.Fatalf("%d runs, want %d", len(runs), want)
	}
	names := map[string]bool{}
	for _, a := range runs {
		test, err := runFlags(a, os.Stderr)
		if err != nil {
			t.Errorf("%v: %v", a, err)
			continue
		}
		if names[test.Config.Name] {
			t.Errorf("two runs named %s", test.Config.Name)
		}
		names[test.Config.Name] = true
	}
	if !slices.ContainsFunc(runs, func(a []string) bool { return slices.Contains(a, "../../ci/schedules/mixed.json") }) {
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
	} {
		p := filepath.Join(t.TempDir(), "m.json")
		os.WriteFile(p, []byte(tc.body), 0o644)
		if _, _, err := readMatrix(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.body, err, tc.want)
		}
	}
}
