package checker

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// recorderOps is what the harness's recorder records on member, watching
// the whole keyspace from revision 1, when the store committed log: one
// response per revision, with the keys' create revisions and versions as
// the store keeps them; then the final read. keep says which commits its
// member's watch delivers (nil: all); compactAt ends the first session as
// compacted at that revision after delivering everything before from, and
// the second session starts there (0: one session).
func recorderOps(log *CommitLog, member string, proc history.Process, keep func(Commit) bool, from, compactAt int64) []history.Op {
	id := "commit-log@" + member
	var events []history.Event
	t := int64(0)
	add := func(e history.Event) {
		t++
		e.Process, e.Time = proc, t
		if e.F != LogRead {
			e.WatchID = id
		}
		events = append(events, e)
	}
	open := func(start int64) {
		add(history.Event{Type: history.Invoke, F: WatchOpen, Key: "\x00", RangeEnd: "\x00", StartRevision: start})
		add(history.Event{Type: history.OK, F: WatchOpen, Created: true, Revision: start})
		add(history.Event{Type: history.Invoke, F: WatchRecv})
	}
	open(1)
	type state struct{ create, ver int64 }
	keys := map[string]state{}
	final := map[string]history.KV{}
	var last int64
	var resp []history.WatchEvent
	flush := func() {
		if len(resp) > 0 {
			add(history.Event{Type: history.OK, F: WatchRecv, Revision: last, WatchEvents: resp})
			add(history.Event{Type: history.Invoke, F: WatchRecv})
		}
		resp = nil
	}
	compacted := false
	for _, c := range log.Commits {
		if c.Revision != last {
			flush()
			last = c.Revision
		}
		if compactAt > 0 && !compacted && c.Revision >= from {
			compacted = true
			add(history.Event{Type: history.Fail, F: WatchRecv, Error: "mvcc: required revision has been compacted", CompactRevision: compactAt})
			proc++
			open(compactAt)
		}
		k := keys[c.Key]
		e := history.WatchEvent{Type: "put"}
		if c.Delete {
			e = history.WatchEvent{Type: "delete", KV: history.KV{Key: c.Key, ModRevision: c.Revision}}
			delete(keys, c.Key)
			delete(final, c.Key)
		} else {
			if k.ver == 0 {
				k.create = c.Revision
			}
			k.ver++
			keys[c.Key] = k
			e.KV = history.KV{Key: c.Key, Value: c.Value, CreateRevision: k.create, ModRevision: c.Revision, Version: k.ver}
			final[c.Key] = e.KV
		}
		if compacted && c.Revision < compactAt {
			continue
		}
		if keep == nil || keep(c) {
			resp = append(resp, e)
		}
	}
	flush()
	add(history.Event{Type: history.Fail, F: WatchRecv, Error: "closed by the watcher: caught up with the final read"})
	proc++
	add(history.Event{Type: history.Invoke, F: LogRead, Key: "\x00", RangeEnd: "\x00"})
	read := history.Event{Type: history.OK, F: LogRead, Key: "\x00", RangeEnd: "\x00", Revision: last}
	for _, k := range slices.Sorted(maps.Keys(final)) {
		read.KVs = append(read.KVs, final[k])
	}
	add(read)
	ops, err := history.Ops(events)
	if err != nil {
		panic(err)
	}
	return ops
}

// TestCommitLogRecorded: a generated kv history with 10% of its writes of
// unknown outcome and what two recorders saw of it: their log agrees with
// the history, and resolves the unknown outcomes as the true commit log
// does.
func TestCommitLogRecorded(t *testing.T) {
	ops, truth := genKVHistoryLog(1000, 0.10, 4)
	rec := slices.Concat(recorderOps(truth, "n1", 900000, nil, 0, 0), recorderOps(truth, "n2", 900100, nil, 0, 0))
	in := &Input{Ops: ops, Recorded: rec, CommitLog: RecordedLog(rec), Timeout: time.Minute}
	if res := CommitLogCheck(t.Context(), in); res.Verdict != Valid {
		t.Fatalf("commit log of a correct store: %s: %s %v", res.Verdict, res.Summary, res.Anomalies)
	} else {
		t.Log(res.Summary)
	}
	res := KV(t.Context(), in)
	want := KV(t.Context(), &Input{Ops: ops, CommitLog: truth, Timeout: time.Minute})
	if res.Verdict != Valid || res.Resolved == nil || *res.Resolved != *want.Resolved || res.Resolved.Taken == 0 || res.Resolved.NotTaken == 0 {
		t.Fatalf("kv with the recorded log: %s (%s), resolved %+v; with the true log %+v", res.Verdict, res.Summary, res.Resolved, want.Resolved)
	}
	// Members that hashed at a later revision than the log reached: said,
	// not held against it.
	in.Events = []history.Event{{Type: history.Info, Process: history.Nemesis, F: history.HashKV, Member: "n1", Revision: truth.Seen[0].To + 3}}
	if res := CommitLogCheck(t.Context(), in); res.Verdict != Valid || !strings.Contains(res.Summary, "past the log's end") {
		t.Errorf("a log that ends before the members' hashes: %s: %s", res.Verdict, res.Summary)
	}
	without := KV(t.Context(), &Input{Ops: ops, Timeout: time.Minute})
	if without.Resolved != nil && without.Resolved.NotTaken >= res.Resolved.NotTaken {
		t.Errorf("the history alone resolved %+v, the recorder's log %+v: want fewer ruled out without it", without.Resolved, res.Resolved)
	}
}

// TestCommitLogGap: a recorder whose watch was compacted away resumes at
// the compaction: the revisions between are a gap in its log, nothing is
// claimed of them, and what stays unseen stays unknown.
func TestCommitLogGap(t *testing.T) {
	ops, truth := genKVHistoryLog(1000, 0.10, 5)
	last := truth.Seen[0].To
	rec := recorderOps(truth, "n1", 900000, nil, last/2, last/2+30)
	log := RecordedLog(rec)
	var spans []revRange
	for _, s := range log.Seen {
		spans = append(spans, revRange{s.From, s.To})
	}
	seen := mergeRevisions(spans)
	if seen.covers(last/2, last/2+29) || !seen.covers(1, last/2-1) || !seen.covers(last/2+30, last) {
		t.Fatalf("seen %s, want everything but %d..%d", seen, last/2, last/2+29)
	}
	in := &Input{Ops: ops, Recorded: rec, CommitLog: log, Timeout: time.Minute}
	if res := CommitLogCheck(t.Context(), in); res.Verdict != Valid {
		t.Fatalf("commit log with a compacted gap: %s: %s %v", res.Verdict, res.Summary, res.Anomalies)
	}
	whole := KV(t.Context(), &Input{Ops: ops, CommitLog: truth, Timeout: time.Minute})
	if res := KV(t.Context(), in); res.Verdict != Valid || res.Resolved == nil || res.Resolved.Unknown <= whole.Resolved.Unknown {
		t.Fatalf("kv with the gap: %s (%s), resolved %+v: want valid and more unknown than %+v", res.Verdict, res.Summary, res.Resolved, whole.Resolved)
	}
}

// TestCommitLogMissesWrite: a recorder whose watch claims it saw every
// revision but never delivered an acknowledged put (the store lost it from
// the watch stream) is reported, naming the put and the recorder; so is one
// that delivers a value at a revision where the history knows another.
func TestCommitLogMissesWrite(t *testing.T) {
	ops, truth := genKVHistoryLog(1000, 0.10, 6)
	i := slices.IndexFunc(ops, func(op history.Op) bool {
		return op.F == KVPut && op.Type() == history.OK && op.Complete.Revision > 10 && op.Complete.Revision < truth.Seen[0].To-10
	})
	put := ops[i]
	lost := func(c Commit) bool { return c.Value != put.Invoke.Value }
	rec := slices.Concat(recorderOps(truth, "n1", 900000, nil, 0, 0), recorderOps(truth, "n2", 900100, lost, 0, 0))
	res := CommitLogCheck(t.Context(), &Input{Ops: ops, Recorded: rec, Timeout: time.Minute})
	text := strings.Join(res.Anomalies, "\n")
	if res.Verdict != Invalid || !strings.Contains(text, "missed event: watch commit-log@n2") || !strings.Contains(text, put.Invoke.Value) {
		t.Fatalf("a recorder missing %s: %s: %s\n%s", describeWriteOp(put), res.Verdict, res.Summary, text)
	}
	if !strings.Contains(res.Summary, "store lost or invented a change, or the recorder is broken") {
		t.Errorf("summary does not say what a disagreement means: %s", res.Summary)
	}
	t.Log(res.Summary)

	// One recorder alone, the write missing: nothing else saw the
	// revision, but the put's acknowledgement says what it holds.
	alone := recorderOps(truth, "n2", 900100, lost, 0, 0)
	res = CommitLogCheck(t.Context(), &Input{Ops: ops, Recorded: alone, Timeout: time.Minute})
	if text := strings.Join(res.Anomalies, "\n"); res.Verdict != Invalid || !strings.Contains(text, "missed event: watch commit-log@n2") || !strings.Contains(text, describeWriteOp(put)) {
		t.Fatalf("the only recorder missing %s: %s: %s\n%s", describeWriteOp(put), res.Verdict, res.Summary, text)
	}

	// The recorder shows the put's value changed: invented.
	changed := &CommitLog{Seen: truth.Seen, Commits: slices.Clone(truth.Commits)}
	j := slices.IndexFunc(changed.Commits, func(c Commit) bool { return c.Value == put.Invoke.Value })
	changed.Commits[j].Value = "never-written"
	res = CommitLogCheck(t.Context(), &Input{Ops: ops, Recorded: recorderOps(changed, "n1", 900000, nil, 0, 0), Timeout: time.Minute})
	if res.Verdict != Invalid || !strings.Contains(strings.Join(res.Anomalies, "\n"), "inconsistent") {
		t.Fatalf("a recorder inventing a value: %s: %s %v", res.Verdict, res.Summary, res.Anomalies)
	}
}

// TestCommitLogOnlyItsOwn: what the history shows wrong without the
// recorder (a read of a value at a revision where an acknowledged put says
// another) is the kv checker's to report; the commit-log check names only
// what the recorder's log adds, here nothing.
func TestCommitLogOnlyItsOwn(t *testing.T) {
	ops, truth := genKVHistoryLog(1000, 0.02, 7)
	bad := slices.Clone(ops)
	for i := range bad {
		op := &bad[i]
		if op.F == KVGet && op.Type() == history.OK && len(op.Complete.KVs) == 1 {
			kvs := slices.Clone(op.Complete.KVs)
			kvs[0].Value = "never-written"
			op.Complete.KVs = kvs
			break
		}
	}
	alone := newStreams(logStreams)
	alone.parse(bad)
	if alone.found.counts["inconsistent"] == 0 {
		t.Fatal("the broken read does not contradict the history")
	}
	rec := recorderOps(truth, "n1", 900000, nil, 0, 0)
	if res := CommitLogCheck(t.Context(), &Input{Ops: bad, Recorded: rec, Timeout: time.Minute}); res.Verdict != Valid {
		t.Fatalf("the recorder agrees with the store, whose read is broken: %s: %s %v", res.Verdict, res.Summary, res.Anomalies)
	}
}
