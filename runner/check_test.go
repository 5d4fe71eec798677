package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

// storedRun copies the small real run kept as the reports' fixture into a
// fresh run directory, with its history changed by edit, and gives it the
// member logs of a healthy etcd run, with tail added to n2's.
func storedRun(t *testing.T, edit func(string) string, tail string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{rundir.HistoryFile, rundir.ResultsFile} {
		b, err := os.ReadFile(filepath.Join("..", "reports", "testdata", "smallrun", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == rundir.HistoryFile {
			b = []byte(edit(string(b)))
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	os.Mkdir(filepath.Join(dir, rundir.LogsDir), 0o755)
	for _, m := range []string{"n1", "n2", "n3"} {
		b, err := os.ReadFile(filepath.Join("..", "checker", "testdata", "logs", "valid-etcd-v3.5.17", m+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if m == "n2" {
			b = append(b, tail...)
		}
		os.WriteFile(filepath.Join(dir, rundir.LogsDir, m+".log"), b, 0o644)
	}
	return dir
}

// withHashes appends the members' answers to the hash asked after the final
// phase, which the stored run predates, one hash per member n1, n2, ...
func withHashes(hashes ...uint32) func(string) string {
	return func(s string) string {
		for i, h := range hashes {
			b, _ := json.Marshal(history.Event{Type: history.Info, Process: history.Nemesis, F: history.HashKV, Time: 87e8,
				Member: fmt.Sprintf("n%d", i+1), Revision: 300, FaultInfo: &history.FaultInfo{Hash: h}})
			s += string(b) + "\n"
		}
		return s
	}
}

// TestCheckStoredRun is faultline check: a stored real history is checked
// again offline and its results and report rewritten. As recorded, before
// members were asked for their hashes, the members-agree check cannot tell;
// with the hashes they agree and the history is valid; with a hash changed,
// one read's answer changed to a value nobody wrote, or a member log that
// shows a panic, it is invalid.
func TestCheckStoredRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(string) string
		log  string
		want checker.Verdict
	}{
		{"as recorded", func(s string) string { return s }, "", checker.Unknown},
		{"with the members' hashes", withHashes(7, 7, 7), "", checker.Valid},
		{"with a member's hash different", withHashes(7, 7, 8), "", checker.Invalid},
		{"a read of a value nobody wrote", func(s string) string {
			lines := strings.Split(s, "\n")
			for i, l := range lines {
				var e history.Event
				if json.Unmarshal([]byte(l), &e) == nil && e.Type == history.OK && e.F == history.Read {
					e.Value = "never-written"
					b, _ := json.Marshal(e)
					lines[i] = string(b)
					break
				}
			}
			return withHashes(7, 7, 7)(strings.Join(lines, "\n"))
		}, "", checker.Invalid},
		{"a member that panicked", withHashes(7, 7, 7), "panic: boom\n\ngoroutine 1 [running]:\n", checker.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := storedRun(t, tc.edit, tc.log)
			res, err := rundir.Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			soft := debug.SetMemoryLimit(-1)
			if err := Check(context.Background(), dir, res); err != nil {
				t.Fatal(err)
			}
			if now := debug.SetMemoryLimit(-1); now != soft {
				t.Errorf("the check left the soft memory limit at %d, was %d", now, soft)
			}
			again, err := rundir.Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.want || again.Verdict != tc.want {
				t.Fatalf("verdict %s (stored %s), want %s: %+v", res.Verdict, again.Verdict, tc.want, res.Checks)
			}
			if err := Check(context.Background(), dir, again); err != nil {
				t.Fatal(err)
			}
			if n := len(again.Phases); n != 1 || again.Phases[0].Name != rundir.PhaseCheck {
				t.Errorf("checked twice, phases %+v, want the one check", again.Phases)
			}
			logs := slices.IndexFunc(again.Checks, func(c checker.Result) bool { return c.Checker == checker.LogsChecker })
			if logs < 0 || (again.Checks[logs].Verdict == checker.Invalid) != (tc.log != "") {
				t.Fatalf("the logs check is missing or wrong: %+v", again.Checks)
			}
			if fi, err := os.Stat(filepath.Join(dir, rundir.ReportFile)); err != nil || fi.Size() == 0 {
				t.Fatalf("report not rewritten: %v", err)
			}
		})
	}
}

// TestCheckTooBig: a history that alone would take more than the check's
// memory limit to hold is not read; the run says so, unknown, and names
// the command that checks it with more memory. Under a limit it fits in,
// the same history is checked, and the refusal is gone.
func TestCheckTooBig(t *testing.T) {
	dir := storedRun(t, withHashes(7, 7, 7), "")
	for _, tc := range []struct {
		gib  float64
		want checker.Verdict
	}{{1.0 / (1 << 20), checker.Unknown}, {1, checker.Valid}} {
		// The second check is of the run the first refused, as a user
		// checks it again with more memory: the refusal must not stay.
		res, err := rundir.Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		res.Config.CheckMemory = tc.gib
		if err := Check(context.Background(), dir, res); err != nil {
			t.Fatal(err)
		}
		again, err := rundir.Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		refused := slices.ContainsFunc(again.Problems, func(p string) bool {
			return strings.HasPrefix(p, "not checked: holding the history and its commit log takes about") && strings.Contains(p, "faultline check --check-memory GIB "+dir)
		})
		if again.Verdict != tc.want || refused != (tc.want == checker.Unknown) || (len(again.Checks) == 0) == !refused {
			t.Fatalf("--check-memory %g: verdict %s, problems %q, %d checks", tc.gib, again.Verdict, again.Problems, len(again.Checks))
		}
		if fi, err := os.Stat(filepath.Join(dir, rundir.HistoryFile)); err != nil || fi.Size() == 0 {
			t.Fatalf("the history is gone: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, rundir.ReportFile)); err != nil {
			t.Fatalf("no report: %v", err)
		}
	}
}
