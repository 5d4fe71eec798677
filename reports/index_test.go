package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/rundir"
)

// writeRun stores a minimal run under root/name/stamp.
func writeRun(t *testing.T, root, name string, started time.Time, v checker.Verdict) string {
	t.Helper()
	dir, err := rundir.NewDir(root, name, started)
	if err != nil {
		t.Fatal(err)
	}
	r := &rundir.Results{Config: rundir.Config{Name: name, Target: "etcd", Version: "v3.5.17", Nodes: 3,
		Workload: "register", Nemesis: "kill-leader"}, Verdict: v, Started: started,
		Duration: rundir.Duration(65 * time.Second)}
	if err := rundir.Write(dir, r); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, r, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestIndex(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	writeRun(t, root, "old", t0, checker.Valid)
	writeRun(t, root, "new", t0.Add(time.Hour), checker.Invalid)
	broken := filepath.Join(root, "broken", "x")
	os.MkdirAll(broken, 0o755)
	os.WriteFile(filepath.Join(broken, rundir.ResultsFile), []byte("{not json"), 0o644)

	entries, err := Index(root)
	if err != nil {
		t.Fatal(err)
	}
	// results/latest is a symlink to "new" and must not list it twice.
	if len(entries) != 2 || entries[0].Config.Name != "new" || entries[1].Config.Name != "old" {
		t.Fatalf("entries = %+v, want new then old", entries)
	}
	var buf bytes.Buffer
	if err := WriteIndex(&buf, root); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		`href="new/20261101T130000Z/index.html"`,
		`href="old/20261101T120000Z/index.html"`,
		`<span class="pill invalid">invalid</span>`,
		`<span class="pill valid">valid</span>`,
		"etcd v3.5.17", "kill-leader", "1m5s",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index lacks %s", want)
		}
	}
	if strings.Index(page, "new/") > strings.Index(page, "old/") {
		t.Error("newest run is not listed first")
	}
}

func TestIndexEmpty(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	entries, err := Index(missing)
	if err != nil || len(entries) != 0 {
		t.Fatalf("missing root: %v, %v", entries, err)
	}
	var buf bytes.Buffer
	if err := WriteIndex(&buf, missing); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "No runs yet") {
		t.Fatal("empty index does not say so")
	}
}
