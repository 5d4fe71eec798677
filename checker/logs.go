package checker

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// LogsChecker is the name in Result.Checker.
const LogsChecker = "logs"

// logKind is one sort of trouble a member's log can show.
type logKind struct {
	name string
	// damage marks the kinds of complaint about damaged data: expected of
	// a member whose files a fault damaged on purpose.
	damage bool
	// crash marks the kinds a fault may cause on purpose (a failpoint that
	// makes a member panic); the others are never expected.
	crash bool
	// match reports whether line (no line end) is this trouble.
	match func(line string) bool
}

// logKinds are tried in order; a line is of the first kind it matches, so
// a panic that is raft's complaint about its log counts as the complaint,
// which no fault excuses.
//
// Each pattern is an exact message or a marker at the start of a line, not
// a word: healthy etcd logs carry "corrupt" (its configuration line,
// "initial-corrupt-check":false), "mismatch" ("ignored streaming request;
// ID mismatch", from a replaced member's old peer stream) and "race" (in
// every "trace[…]" line), and healthy runs of etcd v3.5.17 and v3.6.6 and
// kvnode under kill, pause, partition and member-replace log none of the
// lines below.
var logKinds = []logKind{
	// The Go race detector's report (a build with -race).
	{name: "data race", match: prefix("WARNING: DATA RACE")},
	// Raft (go.etcd.io/etcd/raft v3.5 and go.etcd.io/raft v3.6 say the
	// same) panics on a log that contradicts what it committed: a leader's
	// commit index past the member's log, a committed entry overwritten,
	// a saved commit index past the saved log. A member that lost entries
	// it had acknowledged (a lost fsync, an old disk) says this.
	{name: "raft log", damage: true, match: containsAny(
		"Was the raft log corrupted, truncated, or lost?",
		"conflict with committed entry",
		" state.commit ",
	)},
	// etcd's corruption checks (etcdserver/corrupt.go, v3.5 and v3.6):
	// the initial check's refusal to start, the periodic and compaction
	// hash checks' findings, and the CORRUPT alarm they raise. Left out on
	// purpose: "found different compact revision values from remote peer"
	// (two members compacted at different revisions: no hash to compare)
	// and "cluster ID mismatch" (a peer of another cluster).
	//
	// kvnode's equivalents: a committed entry it cannot decode and skips
	// (its state then departs from the other members'), a WAL damaged in
	// the middle (not a torn tail, which a crash leaves and recovery
	// drops), and a snapshot file whose checksum does not hold.
	{name: "inconsistency", damage: true, match: containsAny(
		"found data inconsistency with peers",
		"found different hash values from remote peer",
		"found hash mismatch",
		"revision from follower must be less than or equal to leader's",
		"same compact revision then hashes must match",
		"failed compaction hash check",
		"Detected compaction hash mismatch",
		`"alarm":"CORRUPT"`,
		"cannot decode committed entry",
		"wal: corrupt record in the middle of the log",
		": checksum mismatch",
	)},
	// A Go panic: the runtime's header at the start of a line (nested
	// panics and the trace below are indented or differ), etcd's zap
	// logger at level panic or dpanic (zap then panics, and the runtime's
	// header that follows is the same crash: see scanLog), and net/http's
	// report of a handler that panicked (the server recovered; the bug is
	// there all the same). kvnode's slog has no such level: its panics
	// are the runtime's.
	{name: "panic", crash: true, match: func(l string) bool {
		return prefix("panic: ")(l) || containsAny(`"level":"panic"`, `"level":"dpanic"`, "http: panic serving")(l)
	}},
	// A process that exits on an error: the Go runtime's fatal errors
	// (concurrent map writes, out of memory), zap's level fatal (etcd's
	// lg.Fatal, then exit 1) and kvnode's last word before exit 1 (main
	// prints "kvnode: <error>").
	{name: "fatal", crash: true, match: func(l string) bool {
		return prefix("fatal error: ")(l) || prefix("kvnode: ")(l) || strings.Contains(l, `"level":"fatal"`)
	}},
}

func prefix(p string) func(string) bool {
	return func(l string) bool { return strings.HasPrefix(l, p) }
}

func containsAny(subs ...string) func(string) bool {
	return func(l string) bool {
		return slices.ContainsFunc(subs, func(s string) bool { return strings.Contains(l, s) })
	}
}

// logFinding is one line of trouble.
type logFinding struct {
	kind *logKind
	line int
	text string
}

// logShown is how many lines of one kind in one member's log the result
// quotes; the rest are counted.
const logShown = 3

// Logs scans the members' logs, in.LogsDir/<member>.log in in.Files, for
// panics, fatal errors, data races and the stores' own complaints about
// inconsistent data (see logKinds). Anomalies name the line as
// <dir>/<member>.log:<line>, so with Files the run directory and LogsDir
// "logs" they are paths the report can link.
//
// in.Members are the members whose logs must be there (none: whichever are
// there); a missing or empty log makes the verdict unknown unless another
// log shows trouble, and no logs at all is unknown, never valid.
//
// A nemesis start event whose Crash names a member says the fault crashes
// it on purpose. Log lines share no clock with the history, so which crash
// came from which fault cannot be told. Instead each member may show as
// many crashes (lines of the panic and fatal kinds) as faults were meant
// to crash it: up to that many they are counted as expected; one more and
// all of them are findings, since any one of them may be the unexplained
// one. The count never excuses more crashes than the faults explain.
//
// A start event whose Damaged names a member says the fault damaged its
// files on purpose: every complaint of that member about damaged data (the
// inconsistency and raft log kinds) is then the right answer, and counted,
// not a finding.
func Logs(_ context.Context, in *Input) (res Result) {
	fsys, dir, members, events := in.Files, in.LogsDir, in.Members, in.Events
	start := time.Now()
	res = Result{Checker: LogsChecker}
	defer func() { res.Seconds = time.Since(start).Seconds() }()
	if fsys == nil {
		res.Verdict, res.Summary = Unknown, "no run folder to read the members' logs from"
		return res
	}

	expected, damaged := map[string]int{}, map[string]bool{}
	for _, e := range events {
		if e.Process == history.Nemesis && e.F == history.Start {
			for _, m := range e.Crash {
				expected[m]++
			}
			for _, m := range e.Damaged {
				damaged[m] = true
			}
		}
	}
	files, err := fs.Glob(fsys, path.Join(dir, "*.log"))
	if err != nil {
		res.Verdict, res.Summary = Unknown, "listing the member logs: "+err.Error()
		return res
	}
	var unchecked, troubled []string
	for _, m := range members {
		if !slices.Contains(files, path.Join(dir, m+".log")) {
			unchecked = append(unchecked, m+": no log was saved")
		}
	}
	var scanned, lines, nExpected, nDamage int
	for _, file := range files {
		member := strings.TrimSuffix(path.Base(file), ".log")
		found, n, err := scanLog(fsys, file)
		switch {
		case err != nil:
			unchecked = append(unchecked, fmt.Sprintf("%s: %v", member, err))
		case n == 0:
			unchecked = append(unchecked, member+": the log is empty")
		default:
			scanned++
		}
		lines += n
		crashes := 0
		for _, f := range found {
			if f.kind.crash {
				crashes++
			}
		}
		if crashes <= expected[member] {
			nExpected += crashes
			found = slices.DeleteFunc(found, func(f logFinding) bool { return f.kind.crash })
		}
		if damaged[member] {
			n := len(found)
			found = slices.DeleteFunc(found, func(f logFinding) bool { return f.kind.damage })
			nDamage += n - len(found)
		}
		if len(found) == 0 {
			continue
		}
		var counts []string
		for i := range logKinds {
			k := &logKinds[i]
			var of []logFinding
			for _, f := range found {
				if f.kind == k {
					of = append(of, f)
				}
			}
			if len(of) == 0 {
				continue
			}
			for _, f := range of[:min(len(of), logShown)] {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s:%d: %s: %s", file, f.line, k.name, clip(f.text)))
			}
			if len(of) > logShown {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: %d more %s lines", file, len(of)-logShown, k.name))
			}
			counts = append(counts, plural(len(of), k.name+" line"))
		}
		if crashes > 0 && expected[member] > 0 {
			counts = append(counts, fmt.Sprintf("%d crashes, only %d expected", crashes, expected[member]))
		}
		troubled = append(troubled, member+": "+strings.Join(counts, ", "))
	}

	what := fmt.Sprintf("%s of %s scanned", plural(lines, "line"), plural(scanned, "member log"))
	if nExpected > 0 {
		what += fmt.Sprintf("; crashes expected from faults that crash members on purpose: %d", nExpected)
	}
	if nDamage > 0 {
		what += fmt.Sprintf("; complaints about data damaged on purpose: %d", nDamage)
	}
	switch {
	case len(troubled) > 0:
		res.Verdict = Invalid
		res.Summary = "member logs show trouble: " + strings.Join(troubled, "; ") + " (" + what + ")"
	case len(files) == 0:
		res.Verdict, res.Summary = Unknown, "no member logs were saved: nothing to check"
	case len(unchecked) > 0:
		res.Verdict = Unknown
		res.Summary = "not every member log could be checked: " + strings.Join(unchecked, "; ") + " (" + what + ")"
	default:
		res.Verdict = Valid
		res.Summary = "no panic, fatal error, data race or inconsistency in the member logs: " + what
	}
	return res
}

// scanLog returns the trouble in one log and how many lines it has.
func scanLog(fsys fs.FS, file string) ([]logFinding, int, error) {
	f, err := fsys.Open(file)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	// etcd's trace lines run to kilobytes; a line longer than this stops
	// the scan, and the log counts as not wholly checked.
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var found []logFinding
	n, loggedPanic := 0, -1
	for sc.Scan() {
		n++
		// Members in containers write to a terminal: lines end in \r\n.
		line := strings.TrimSuffix(sc.Text(), "\r")
		for i := range logKinds {
			if !logKinds[i].match(line) {
				continue
			}
			// A logger at level panic then panics: the runtime's header on
			// the next lines repeats the message of the same crash.
			if strings.HasPrefix(line, "panic: ") && loggedPanic >= 0 && n-loggedPanic <= 3 {
				break
			}
			if strings.Contains(line, `"level":"panic"`) || strings.Contains(line, `"level":"dpanic"`) {
				loggedPanic = n
			}
			found = append(found, logFinding{kind: &logKinds[i], line: n, text: line})
			break
		}
	}
	return found, n, sc.Err()
}

// clip shortens a quoted log line: etcd's carry many fields.
func clip(s string) string {
	const limit = 300
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}
