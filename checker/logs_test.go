package checker

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/faultline/faultline/history"
)

var threeMembers = []string{"n1", "n2", "n3"}

// TestLogsFixtures checks each folder of testdata/logs as a run's logs/:
// its name starts with the verdict wanted, and a history.jsonl next to the
// logs gives the nemesis events. valid-etcd-* and valid-kvnode are the
// member logs of healthy runs under kill-leader, partition-leader,
// pause-random and member-replace, trimmed to the first line of each
// message; invalid-kvnode-panic-on-compact is a run of kvnode
// --unsafe-bug panic-on-compact, whose n1 log the *-expected folders
// reuse with faults meant to crash n1 twice and once.
func TestLogsFixtures(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "logs", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures in testdata/logs: %v", err)
	}
	var (
		text strings.Builder
		ran  int
	)
	for _, dir := range dirs {
		base := filepath.Base(dir)
		want, _, _ := strings.Cut(base, "-")
		t.Run(base, func(t *testing.T) {
			var events []history.Event
			if _, err := os.Stat(filepath.Join(dir, "history.jsonl")); err == nil {
				events, _, _ = readFixture(t, filepath.Join(dir, "history.jsonl"))
			}
			res := Logs(t.Context(), &Input{Files: os.DirFS(dir), LogsDir: ".", Members: threeMembers, Events: events})
			fmt.Fprintf(&text, "== %s\n%s", base, userText(res))
			ran++
			t.Logf("%s: %s", res.Verdict, res.Summary)
			for _, a := range res.Anomalies {
				t.Logf("anomaly: %s", a)
			}
			if res.Verdict != Verdict(want) || res.Checker != LogsChecker {
				t.Fatalf("%s says %s (%s), want %s", res.Checker, res.Verdict, res.Summary, want)
			}
			if (res.Verdict == Invalid) != (len(res.Anomalies) > 0) {
				t.Errorf("verdict %s with %d anomalies", res.Verdict, len(res.Anomalies))
			}
		})
	}
	if !t.Failed() && ran == len(dirs) {
		golden(t, "logs", text.String())
	}
}

// healthyLog is a real member log of a healthy etcd run, lines ending in
// \r\n as a container's terminal writes them.
func healthyLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "logs", "valid-etcd-v3.5.17", "n2.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logsWith is a run's logs/ whose n2 log has lines added to a healthy one,
// and the number of the first added line.
func logsWith(t *testing.T, lines ...string) (fstest.MapFS, int) {
	t.Helper()
	healthy := healthyLog(t)
	fsys := fstest.MapFS{}
	for _, m := range threeMembers {
		fsys["logs/"+m+".log"] = &fstest.MapFile{Data: []byte(healthy)}
	}
	fsys["logs/n2.log"] = &fstest.MapFile{Data: []byte(healthy + strings.Join(lines, "\r\n") + "\r\n")}
	return fsys, strings.Count(healthy, "\n") + 1
}

// TestLogsKinds: each kind of trouble, in the forms etcd, kvnode and the
// Go runtime write it, makes the verdict invalid and is quoted with its
// file and line; lines that only look alike (taken from healthy runs and
// from etcd's sources) do not.
func TestLogsKinds(t *testing.T) {
	for _, tc := range []struct{ kind, line string }{
		{"data race", "WARNING: DATA RACE"},
		{"raft log", `{"level":"panic","ts":"2026-12-01T10:29:31.002Z","logger":"raft","caller":"etcdserver/zap_raft.go:101","msg":"tocommit(9) is out of range [lastIndex(4)]. Was the raft log corrupted, truncated, or lost?"}`},
		{"raft log", "panic: 8e9e05c52164694d state.commit 12 is out of range [10, 11]"},
		{"raft log", `{"time":"2026-12-01T10:32:13.3Z","level":"ERROR","msg":"entry 7 conflict with committed entry [committed(9)]","member":"n1","component":"raft"}`},
		{"inconsistency", `{"level":"fatal","ts":"2026-12-01T10:29:31.002Z","caller":"etcdmain/etcd.go:204","msg":"discovery failed","error":"cde2575764f577aa found data inconsistency with peers"}`},
		{"inconsistency", `{"level":"warn","ts":"2026-12-01T10:29:31.002Z","caller":"etcdserver/corrupt.go:209","msg":"found hash mismatch","revision-1":5,"compact-revision-1":1,"hash-1":1,"revision-2":5,"compact-revision-2":1,"hash-2":2}`},
		{"inconsistency", `{"level":"warn","ts":"2026-12-01T10:29:31.002Z","caller":"etcdserver/corrupt.go:120","msg":"found different hash values from remote peer","local-member-id":"cde2575764f577aa"}`},
		{"inconsistency", `{"level":"warn","ts":"2026-12-01T10:29:31.002Z","caller":"etcdserver/corrupt.go:241","msg":"compact revision from follower must be less than or equal to leader's","leader-compact-revision":3,"follower-compact-revision":4}`},
		{"inconsistency", `{"level":"error","ts":"2026-12-01T10:29:31.002Z","caller":"etcdserver/corrupt.go:300","msg":"failed compaction hash check","revision":9}`},
		{"inconsistency", `{"level":"error","ts":"2026-12-01T10:29:31.002Z","caller":"etcdserver/corrupt.go:378","msg":"Detected compaction hash mismatch","leader-id":"cde2575764f577aa"}`},
		{"inconsistency", `{"level":"warn","ts":"2026-12-01T10:29:31.002Z","caller":"etcdserver/apply.go:752","msg":"alarm raised","alarm":"CORRUPT","from":"0"}`},
		{"inconsistency", `{"time":"2026-12-01T10:32:13.3Z","level":"ERROR","msg":"cannot decode committed entry; skipping it","member":"n1","index":12,"err":"proto: illegal wireType 7"}`},
		{"inconsistency", "kvnode: open wal: wal: corrupt record in the middle of the log: at offset 4096"},
		{"inconsistency", "kvnode: snapshot /data/member/snap/0000000000000010.snap: checksum mismatch"},
		{"panic", "panic: runtime error: invalid memory address or nil pointer dereference"},
		{"panic", `{"level":"panic","ts":"2026-12-01T10:29:31.002Z","caller":"etcdserver/apply.go:759","msg":"unimplemented alarm activation"}`},
		{"panic", "2026/12/01 10:29:31 http: panic serving 10.0.0.1:51000: boom"},
		{"fatal", "fatal error: concurrent map writes"},
		{"fatal", `{"level":"fatal","ts":"2026-12-01T10:29:31.002Z","caller":"etcdmain/etcd.go:219","msg":"listener failed","error":"listen tcp 0.0.0.0:2379: bind: address already in use"}`},
		{"fatal", "kvnode: listen tcp 0.0.0.0:2379: bind: address already in use"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			fsys, line := logsWith(t, tc.line)
			res := Logs(t.Context(), &Input{Files: fsys, LogsDir: "logs", Members: threeMembers})
			want := "logs/n2.log:" + strconv.Itoa(line) + ": " + tc.kind + ": "
			if res.Verdict != Invalid || len(res.Anomalies) != 1 || !strings.HasPrefix(res.Anomalies[0], want) {
				t.Fatalf("%s: %s %v, want invalid with one anomaly starting %q", tc.line, res.Verdict, res.Anomalies, want)
			}
			if !strings.Contains(res.Summary, "n2: 1 "+tc.kind+" line") {
				t.Errorf("summary %q does not count the line", res.Summary)
			}
		})
	}
	t.Run("look-alikes", func(t *testing.T) {
		fsys, _ := logsWith(t,
			`{"level":"warn","ts":"2026-12-01T10:29:31.002Z","caller":"etcdserver/corrupt.go:123","msg":"found different compact revision values from remote peer"}`,
			`{"level":"warn","ts":"2026-12-01T10:29:31.002Z","caller":"etcdserver/corrupt.go:156","msg":"cluster ID mismatch"}`,
			`{"level":"info","ts":"2026-12-01T10:29:31.002Z","caller":"etcdserver/corrupt.go:170","msg":"initial corruption checking passed; no corruption"}`,
			`{"time":"2026-12-01T10:32:13.3Z","level":"INFO","msg":"a message that mentions panic: and fatal error: in passing"}`,
		)
		if res := Logs(t.Context(), &Input{Files: fsys, LogsDir: "logs", Members: threeMembers}); res.Verdict != Valid {
			t.Fatalf("%s: %s %v", res.Verdict, res.Summary, res.Anomalies)
		}
	})
}

// goPanic is what the Go runtime writes when a panic kills a process: one
// header, a nested panic indented, frames named panic(…).
var goPanic = []string{
	"panic: boom [recovered]",
	"\tpanic: boom again",
	"",
	"goroutine 1 [running]:",
	"panic({0x4a5b20?, 0xc000012345?})",
	"\t/usr/local/go/src/runtime/panic.go:787 +0x132",
	"main.main()",
	"\t/src/main.go:5 +0x25",
	"exit status 2",
}

// TestLogsCounts: a crash is counted once however many lines it takes, a
// logger's panic and the runtime's header after it are one crash, and past
// a few lines per kind the rest are counted, not quoted.
func TestLogsCounts(t *testing.T) {
	zapPanic := `{"level":"panic","ts":"2026-12-01T10:29:31.002Z","caller":"etcdserver/apply.go:759","msg":"unimplemented alarm activation"}`
	for _, tc := range []struct {
		name      string
		lines     []string
		summary   string
		anomalies int
	}{
		{"one go panic", goPanic, "n2: 1 panic line", 1},
		{"a logged panic then the runtime's", slices.Concat([]string{zapPanic, "panic: unimplemented alarm activation"}, goPanic[2:]), "n2: 1 panic line", 1},
		{"five panics", slices.Concat(goPanic, goPanic, goPanic, goPanic, goPanic), "n2: 5 panic lines", logShown + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, _ := logsWith(t, tc.lines...)
			res := Logs(t.Context(), &Input{Files: fsys, LogsDir: "logs", Members: threeMembers})
			if res.Verdict != Invalid || !strings.Contains(res.Summary, tc.summary) || len(res.Anomalies) != tc.anomalies {
				t.Fatalf("%s: %s, %d anomalies %v; want invalid, %q, %d anomalies", res.Verdict, res.Summary, len(res.Anomalies), res.Anomalies, tc.summary, tc.anomalies)
			}
		})
	}
}

// crashFault is a nemesis start event of a fault that crashes members on
// purpose.
func crashFault(members ...string) history.Event {
	return history.Event{Type: history.Info, Process: history.Nemesis, F: history.Start, FaultInfo: &history.FaultInfo{Fault: "failpoint", Nodes: members, Crash: members}}
}

// TestLogsExpectedCrashes: a member may crash as often as faults meant to
// crash it; one crash more, a crash of another member, or raft's complaint
// about its log is a finding all the same.
func TestLogsExpectedCrashes(t *testing.T) {
	raftPanic := "panic: tocommit(9) is out of range [lastIndex(4)]. Was the raft log corrupted, truncated, or lost?"
	for _, tc := range []struct {
		name   string
		faults []history.Event
		lines  []string
		want   Verdict
		text   string
	}{
		{"as many as expected", []history.Event{crashFault("n2"), crashFault("n1", "n2")}, slices.Concat(goPanic, goPanic), Valid, "crashes expected from faults that crash members on purpose: 2"},
		{"one more than expected", []history.Event{crashFault("n2")}, slices.Concat(goPanic, goPanic), Invalid, "2 crashes, only 1 expected"},
		{"another member expected to crash", []history.Event{crashFault("n1")}, goPanic, Invalid, "n2: 1 panic line"},
		{"raft's complaint is never expected", []history.Event{crashFault("n2")}, []string{raftPanic}, Invalid, "n2: 1 raft log line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, _ := logsWith(t, tc.lines...)
			res := Logs(t.Context(), &Input{Files: fsys, LogsDir: "logs", Members: threeMembers, Events: tc.faults})
			if res.Verdict != tc.want || !strings.Contains(res.Summary, tc.text) {
				t.Fatalf("%s: %s; want %s, %q", res.Verdict, res.Summary, tc.want, tc.text)
			}
		})
	}
}

// TestLogsDamagedOnPurpose: a member whose files a fault damaged may say
// so; the same complaint from a member nobody damaged is a finding.
func TestLogsDamagedOnPurpose(t *testing.T) {
	refusal := "kvnode: data dir damaged: /data/member/wal/wal.log, offset 1976: wal: corrupt record in the middle of the log: record checksum mismatch"
	damage := func(m string) history.Event {
		return history.Event{Type: history.Info, Process: history.Nemesis, F: history.Start, FaultInfo: &history.FaultInfo{Fault: "disk-corrupt", Nodes: []string{m}, Damaged: []string{m}}}
	}
	for _, tc := range []struct {
		name   string
		faults []history.Event
		want   Verdict
		text   string
	}{
		{"damaged on purpose", []history.Event{damage("n2")}, Valid, "complaints about data damaged on purpose: 1"},
		{"another member damaged", []history.Event{damage("n1")}, Invalid, "n2: 1 inconsistency line"},
		{"nothing damaged", nil, Invalid, "n2: 1 inconsistency line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, _ := logsWith(t, refusal)
			res := Logs(t.Context(), &Input{Files: fsys, LogsDir: "logs", Members: threeMembers, Events: tc.faults})
			if res.Verdict != tc.want || !strings.Contains(res.Summary, tc.text) {
				t.Fatalf("%s: %s; want %s, %q", res.Verdict, res.Summary, tc.want, tc.text)
			}
		})
	}
}

// TestLogsUnchecked: logs that are not there, or empty, are unknown, never
// valid; trouble in the logs that are there is still invalid.
func TestLogsUnchecked(t *testing.T) {
	healthy := &fstest.MapFile{Data: []byte(healthyLog(t))}
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		want Verdict
		text string
	}{
		{"no logs", fstest.MapFS{"logs": &fstest.MapFile{Mode: fs.ModeDir}}, Unknown, "no member logs were saved"},
		{"no logs folder", fstest.MapFS{}, Unknown, "no member logs were saved"},
		{"a member's log missing", fstest.MapFS{"logs/n1.log": healthy, "logs/n2.log": healthy}, Unknown, "n3: no log was saved"},
		{"an empty log", fstest.MapFS{"logs/n1.log": healthy, "logs/n2.log": healthy, "logs/n3.log": {}}, Unknown, "n3: the log is empty"},
		{"trouble beside a missing log", fstest.MapFS{"logs/n1.log": healthy, "logs/n2.log": {Data: []byte("fatal error: out of memory\n")}}, Invalid, "n2: 1 fatal line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Logs(t.Context(), &Input{Files: tc.fsys, LogsDir: "logs", Members: threeMembers})
			if res.Verdict != tc.want || !strings.Contains(res.Summary, tc.text) {
				t.Fatalf("%s: %s; want %s, %q", res.Verdict, res.Summary, tc.want, tc.text)
			}
		})
	}
}
