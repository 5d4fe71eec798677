package rundir

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestNewDir(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	a, err := NewDir(root, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	// A second run in the same second must not share the first's folder.
	b, err := NewDir(root, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	if a == b || filepath.Base(b) != "20261123T100000Z-2" {
		t.Fatalf("second run in the same second got %s (first %s)", b, a)
	}
	latest, err := filepath.EvalSymlinks(filepath.Join(root, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.EvalSymlinks(b); latest != want {
		t.Fatalf("latest -> %s, want %s", latest, want)
	}
	if fi, err := os.Stat(filepath.Join(b, LogsDir)); err != nil || !fi.IsDir() {
		t.Fatalf("no logs folder: %v", err)
	}
}

func TestResultsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := &Results{Config: Config{Name: "x", Nodes: 3, TimeLimit: Duration(90 * time.Second)}, Verdict: "valid"}
	if err := Write(dir, in); err != nil {
		t.Fatal(err)
	}
	out, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if out.Config.TimeLimit != in.Config.TimeLimit || out.Verdict != "valid" || out.Config.Name != "x" {
		t.Fatalf("read back %+v", out)
	}
	os.WriteFile(filepath.Join(dir, ResultsFile), []byte(`{"config":{"time_limit":"soon"}}`), 0o644)
	if _, err := Read(dir); err == nil {
		t.Fatal("a bad duration was accepted")
	}
}

// TestScheduleRoundTrip: a run's schedule survives results.json, and a
// results.json from before schedules reads as a run without one.
func TestScheduleRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := &Schedule{Repeat: true, Jitter: 0.2, Steps: []Step{
		{Fault: "kill-leader", Quiet: Duration(10 * time.Second), For: Duration(5 * time.Second)},
		{Fault: "kill-random+pause-leader", Quiet: Duration(time.Second), For: Duration(1500 * time.Millisecond)},
		{Fault: "kill-leader", Quiet: Duration(time.Second), For: Duration(time.Second)},
	}}
	if err := Write(dir, &Results{Config: Config{Name: "x", Nemesis: s.Faults(), ScheduleFile: "s.json", Schedule: s}}); err != nil {
		t.Fatal(err)
	}
	out, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Config.Schedule, s) || out.Config.ScheduleFile != "s.json" || out.Config.Nemesis != "kill-leader,kill-random+pause-leader" {
		t.Fatalf("read back %+v from %q, nemesis %q", out.Config.Schedule, out.Config.ScheduleFile, out.Config.Nemesis)
	}
	os.WriteFile(filepath.Join(dir, ResultsFile), []byte(`{"config":{"name":"old","nemesis":"kill-leader","nemesis_interval":"10s"}}`), 0o644)
	out, err = Read(dir)
	if err != nil || out.Config.Schedule != nil || out.Config.ScheduleFile != "" || time.Duration(out.Config.NemesisInterval) != 10*time.Second {
		t.Fatalf("an old results.json: %+v, %v", out, err)
	}
}
