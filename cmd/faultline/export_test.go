package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// faultline export writes the history of a run, and refuses an unknown
// format or a folder that is not a run with an error that says so.
func TestExportCmd(t *testing.T) {
	dir := copyRun(t, -1)
	out := filepath.Join(t.TempDir(), "history.edn")
	if code, err := exportCmd(context.Background(), []string{"--format", "jepsen", dir, "--out", out}); code != 0 || err != nil {
		t.Fatalf("export: exit %d, %v", code, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "{:type :"); n != 740 {
		t.Errorf("%d operations exported, want the fixture's 740 events", n)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "knossos", dir}, `unknown format "knossos": want one of jepsen, porcupine`},
		{[]string{dir}, "give --format"},
		{[]string{"--format", "jepsen", t.TempDir()}, "is not a run directory: it has no history.jsonl"},
		{[]string{"--format", "jepsen"}, "give one run directory"},
	} {
		code, err := exportCmd(context.Background(), tc.args)
		if code != exitError || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("export %v: exit %d, error %v; want exit %d and an error saying %q", tc.args, code, err, exitError, tc.want)
		}
	}
}
