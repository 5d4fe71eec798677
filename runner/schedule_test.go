package runner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/nemesis"
	"github.com/faultline/faultline/rundir"
)

func writeSchedule(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sched.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadSchedule(t *testing.T) {
	sec := func(n int) rundir.Duration { return rundir.Duration(time.Duration(n) * time.Second) }
	for _, tc := range []struct {
		name, body string
		want       rundir.Schedule
	}{
		{"defaults", `{"steps": [{"fault": "kill-leader", "quiet": "10s", "for": "5s"}]}`,
			rundir.Schedule{Repeat: true, Jitter: 0.2, Steps: []rundir.Step{{Fault: "kill-leader", Quiet: sec(10), For: sec(5)}}}},
		{"everything", `{"repeat": false, "jitter": 0, "steps": [
			{"fault": "partition-leader", "quiet": "10s", "for": "5s"},
			{"fault": "kill-random+pause-leader", "quiet": "5s", "for": "8s"},
			{"fault": "peer-latency=200ms:50ms", "quiet": "1m", "for": "1m30s"},
			{"fault": "kill-leader", "quiet": "1s", "for": "1s"}]}`,
			rundir.Schedule{Repeat: false, Jitter: 0, Steps: []rundir.Step{
				{Fault: "partition-leader", Quiet: sec(10), For: sec(5)},
				{Fault: "kill-random+pause-leader", Quiet: sec(5), For: sec(8)},
				{Fault: "peer-latency=200ms:50ms", Quiet: sec(60), For: sec(90)},
				{Fault: "kill-leader", Quiet: sec(1), For: sec(1)},
			}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadSchedule(writeSchedule(t, tc.body), 3)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("got %+v, want %+v", *got, tc.want)
			}
			// What results.json records is itself a schedule file.
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ReadSchedule(writeSchedule(t, string(b)), 3)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("recorded %s reads back as %+v, %v", b, again, err)
			}
		})
	}
}

func TestReadScheduleErrors(t *testing.T) {
	step := func(fault, quiet, dur string) string {
		return `{"steps": [{"fault": "kill-leader", "quiet": "1s", "for": "1s"}, {"fault": "` + fault + `", "quiet": "` + quiet + `", "for": "` + dur + `"}]}`
	}
	for _, tc := range []struct {
		name, body string
		nodes      int
		want       []string // every one must be in the error
	}{
		{"unknown fault", step("kill-leader+kill-everyone", "1s", "1s"), 3, []string{`step 2: fault "kill-leader+kill-everyone": unknown nemesis "kill-everyone"; want one of`, "partition-leader", "joined by +"}},
		{"bad setting", step("peer-loss=200", "1s", "1s"), 3, []string{"step 2: fault", "percentage from 1 to 100"}},
		{"same fault twice at once", step("kill-leader+kill-leader", "1s", "1s"), 3, []string{"step 2: fault", "twice"}},
		{"faults taking turns", step("kill-leader,pause-leader", "1s", "1s"), 3, []string{"step 2: fault", "a step of its own"}},
		{"none", step("none", "1s", "1s"), 3, []string{"step 2: fault", "injects a fault"}},
		{"clock", step("clock-skew", "1s", "1s"), 3, []string{"step 2: fault", "clock faults are not possible"}},
		{"no fault", `{"steps": [{"quiet": "1s", "for": "1s"}]}`, 3, []string{"step 1: fault missing", "such as kill-leader"}},
		{"too big for the cluster", step("partition-majorities-ring", "1s", "1s"), 3, []string{"step 2: fault", "needs at least 4 members, the cluster has 3"}},
		{"bad quiet", step("kill-leader", "10", "1s"), 3, []string{`step 2: quiet "10"`, "want a Go duration such as 10s"}},
		{"bad for", step("kill-leader", "1s", "five seconds"), 3, []string{`step 2: for "five seconds"`, "want a Go duration"}},
		{"no quiet", `{"steps": [{"fault": "kill-leader", "for": "1s"}]}`, 3, []string{"step 1: quiet missing", "want a Go duration"}},
		{"zero quiet", step("kill-leader", "0s", "1s"), 3, []string{"step 2: quiet 0s", "want a positive duration"}},
		{"negative for", step("kill-leader", "1s", "-5s"), 3, []string{"step 2: for -5s", "want a positive duration"}},
		{"number for", `{"steps": [{"fault": "kill-leader", "quiet": "1s", "for": 5}]}`, 3, []string{"step 1:", "for", "want {"}},
		{"unknown step field", `{"steps": [{"fault": "kill-leader", "quiet": "1s", "duration": "1s"}]}`, 3, []string{"step 1:", `unknown field "duration"`, `"fault"`, `"quiet"`, `"for"`}},
		{"unknown field", `{"repeats": false, "steps": [{"fault": "kill-leader", "quiet": "1s", "for": "1s"}]}`, 3, []string{`unknown field "repeats"`, `"repeat"`, `"jitter"`, `"steps"`}},
		{"empty steps", `{"steps": []}`, 3, []string{"steps: none given", "want at least one"}},
		{"no steps", `{"repeat": true}`, 3, []string{"steps: none given"}},
		{"jitter 1", `{"jitter": 1, "steps": [{"fault": "kill-leader", "quiet": "1s", "for": "1s"}]}`, 3, []string{"jitter 1:", "from 0", "not including 1"}},
		{"negative jitter", `{"jitter": -0.1, "steps": [{"fault": "kill-leader", "quiet": "1s", "for": "1s"}]}`, 3, []string{"jitter -0.1:"}},
		{"not JSON", `repeat: true`, 3, []string{"invalid character", "want {"}},
		{"empty file", ``, 3, []string{"empty", "want {"}},
		{"two objects", `{"steps": []} {}`, 3, []string{"more than one JSON value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeSchedule(t, tc.body)
			_, err := ReadSchedule(p, tc.nodes)
			if err == nil {
				t.Fatalf("%s accepted", tc.body)
			}
			for _, w := range append([]string{p + ": "}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	p := filepath.Join(t.TempDir(), "missing.json")
	if _, err := ReadSchedule(p, 3); err == nil || err.Error() != p+": reading the schedule: no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
}

// TestNemesisSchedule: a config without a schedule (every results.json
// written before schedules existed) runs its --nemesis faults in turns as
// before; one with a schedule runs its steps.
func TestNemesisSchedule(t *testing.T) {
	old := rundir.Config{Nodes: 3, Nemesis: "kill-leader,peer-latency", NemesisInterval: rundir.Duration(10 * time.Second), NemesisDuration: rundir.Duration(5 * time.Second)}
	s, err := nemesisSchedule(old)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Repeat || s.Jitter != nemesis.DefaultJitter || len(s.Steps) != 2 || s.Steps[1].Fault.Name() != "peer-latency" ||
		s.Steps[1].Quiet != 10*time.Second || s.Steps[1].For != 5*time.Second {
		t.Errorf("--nemesis schedule %+v", s)
	}
	if !needsPeerProxy(old) {
		t.Error("peer-latency among --nemesis faults starts no peer proxy")
	}

	sched := &rundir.Schedule{Jitter: 0.1, Steps: []rundir.Step{
		{Fault: "kill-leader", Quiet: rundir.Duration(time.Second), For: rundir.Duration(2 * time.Second)},
		{Fault: "pause-random+peer-latency=300ms", Quiet: rundir.Duration(3 * time.Second), For: rundir.Duration(4 * time.Second)},
	}}
	cfg := rundir.Config{Nodes: 3, Nemesis: sched.Faults(), Schedule: sched}
	s, err = nemesisSchedule(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Repeat || s.Jitter != 0.1 || len(s.Steps) != 2 || s.Steps[1].Fault.Name() != "peer-latency=300ms:0s+pause-random" || s.Steps[1].For != 4*time.Second {
		t.Errorf("file schedule %+v", s)
	}
	if !needsPeerProxy(cfg) {
		t.Error("peer-latency in a step starts no peer proxy")
	}
	cfg.Schedule.Steps = cfg.Schedule.Steps[:1]
	if needsPeerProxy(cfg) {
		t.Error("a schedule without peer-latency starts the peer proxy")
	}
	cfg.Schedule.Steps[0].Fault = "kill-everyone"
	if _, err := nemesisSchedule(cfg); err == nil {
		t.Error("a recorded schedule with an unknown fault was accepted")
	}
}

// TestScheduleFileRun is a short real run from a schedule file: three etcd
// members, the leader killed and then a random member paused, in turns.
// Healthy etcd must come out valid, the faults must have started in the
// file's order, and results.json must hold the schedule.
func TestScheduleFileRun(t *testing.T) {
	dockerOrSkip(t)
	file := writeSchedule(t, `{"steps": [
		{"fault": "kill-leader", "quiet": "4s", "for": "3s"},
		{"fault": "pause-random", "quiet": "3s", "for": "3s"}]}`)
	sched, err := ReadSchedule(file, 3)
	if err != nil {
		t.Fatal(err)
	}
	test := shortTest(t, "etcd", 25*time.Second)
	test.Config.Name = "e2e-schedule"
	test.Config.Nemesis, test.Config.NemesisInterval, test.Config.NemesisDuration = sched.Faults(), 0, 0
	test.Config.ScheduleFile, test.Config.Schedule = file, sched
	res, dir := run(t, test)
	if res.Verdict != checker.Valid {
		t.Fatalf("verdict %s on healthy etcd: %+v", res.Verdict, res.Checks)
	}
	events := readHistory(t, dir)
	var started []string
	for _, e := range events {
		if e.Process == history.Nemesis && e.F == history.Start {
			started = append(started, e.Fault)
		}
	}
	t.Logf("faults started: %v", started)
	if len(started) < 3 {
		t.Errorf("faults started: %v, want the two steps and the first again", started)
	}
	for i, f := range started {
		if want := sched.Steps[i%2].Fault; f != want {
			t.Errorf("fault %d was %s, want %s (started: %v)", i, f, want, started)
		}
	}
	stored, err := rundir.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored.Config.Schedule, sched) || stored.Config.ScheduleFile != file {
		t.Errorf("results.json holds schedule %+v from %q, want %+v from %q", stored.Config.Schedule, stored.Config.ScheduleFile, sched, file)
	}
	report, err := os.ReadFile(filepath.Join(dir, rundir.ReportFile))
	if err != nil || !strings.Contains(string(report), "4s quiet, kill-leader for 3s; 3s quiet, pause-random for 3s (repeated, jitter ±20%)") {
		t.Errorf("the report does not show the schedule: %v", err)
	}
}
