package checker

import (
	"slices"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// TestKVResolved: generated histories of a correct store with 10% writes
// of unknown outcome are valid with their commit log, whole or with a gap;
// resolution never hides a broken read; and a write the log shows is
// placed at the log's revision, so a log that puts it where a known write
// is makes the history invalid.
func TestKVResolved(t *testing.T) {
	for seed := range uint64(3) {
		ops, log := genKVHistoryLog(1000, 0.10, seed)
		res := KV(t.Context(), &Input{Ops: ops, CommitLog: log, Timeout: time.Minute})
		if res.Verdict != Valid || res.Resolved == nil || res.Resolved.Taken == 0 || res.Resolved.NotTaken == 0 {
			t.Fatalf("seed %d: verdict %s (%s), resolved %+v: want valid, some taken, some not", seed, res.Verdict, res.Summary, res.Resolved)
		}
		whole := *res.Resolved

		// The log cannot see 40 revisions in the middle (compacted, say).
		last := log.Seen[0].To
		lo, hi := last/2, last/2+40
		gap := &CommitLog{Seen: []RevSpan{{2, lo - 1}, {hi + 1, last}}}
		for _, c := range log.Commits {
			if c.Revision < lo || c.Revision > hi {
				gap.Commits = append(gap.Commits, c)
			}
		}
		res = KV(t.Context(), &Input{Ops: ops, CommitLog: gap, Timeout: time.Minute})
		if res.Verdict != Valid || res.Resolved == nil || res.Resolved.Unknown <= whole.Unknown {
			t.Fatalf("seed %d: log with a gap: verdict %s (%s), resolved %+v: want valid, more unknown than %d", seed, res.Verdict, res.Summary, res.Resolved, whole.Unknown)
		}

		// A read returns an older value of its key (as TestKVGenerated).
		bad := slices.Clone(ops)
		for i := len(bad) - 1; i >= 0; i-- {
			op := &bad[i]
			if op.F == KVGet && op.Type() == history.OK && !op.Invoke.Serializable && len(op.Complete.KVs) == 1 && op.Complete.KVs[0].Version > 1 {
				kvs := slices.Clone(op.Complete.KVs)
				kvs[0].Value, kvs[0].ModRevision, kvs[0].Version = "never-written", kvs[0].ModRevision-1, kvs[0].Version-1
				op.Complete.KVs = kvs
				break
			}
		}
		if res := KV(t.Context(), &Input{Ops: bad, CommitLog: log, Timeout: time.Minute}); res.Verdict != Invalid {
			t.Fatalf("seed %d: broken read with the log: verdict %s: %s", seed, res.Verdict, res.Summary)
		}

		// The log shows an info put nobody read at the revision of an ok
		// put instead of its own.
		moved := &CommitLog{Seen: log.Seen, Commits: slices.Clone(log.Commits)}
		if !moveUnreadInfoPut(ops, moved) {
			t.Fatalf("seed %d: no info put to move", seed)
		}
		if res := KV(t.Context(), &Input{Ops: ops, CommitLog: moved, Timeout: time.Minute}); res.Verdict != Invalid {
			t.Fatalf("seed %d: log placing a write at a known write's revision: verdict %s: %s", seed, res.Verdict, res.Summary)
		}
	}
}

// moveUnreadInfoPut changes, in log, the revision of an info put's value
// that no operation read to the revision of an ok put invoked after it
// (so the revisions allow it to have been committed there).
func moveUnreadInfoPut(ops []history.Op, log *CommitLog) bool {
	read := map[string]bool{}
	for _, op := range ops {
		for _, kv := range op.Complete.KVs {
			read[kv.Value] = true
		}
		if op.Complete.Prev != nil {
			read[op.Complete.Prev.Value] = true
		}
	}
	for _, op := range ops {
		if op.F != KVPut || op.Type() != history.Info || read[op.Invoke.Value] {
			continue
		}
		i := slices.IndexFunc(log.Commits, func(c Commit) bool { return c.Value == op.Invoke.Value })
		j := slices.IndexFunc(ops, func(o history.Op) bool {
			return o.F == KVPut && o.Type() == history.OK && o.Invoke.Time > op.Invoke.Time
		})
		if i >= 0 && j >= 0 {
			log.Commits[i].Revision = ops[j].Complete.Revision
			return true
		}
	}
	return false
}

// TestNoResolve: the switch leaves the writes of unknown outcome alone.
func TestNoResolve(t *testing.T) {
	ops, log := genKVHistoryLog(1000, 0.02, 1)
	res := KV(t.Context(), &Input{Ops: ops, CommitLog: log, NoResolve: true, Timeout: time.Minute})
	if res.Verdict != Valid || res.Resolved != nil {
		t.Fatalf("verdict %s (%s), resolved %+v: want valid and nothing resolved", res.Verdict, res.Summary, res.Resolved)
	}
}

// TestResolveFixtures: what resolving changes in the commit-log fixtures.
// The stale read stays invalid without it; the register's stale read is
// only found with it (without, the unknown write may come after the read).
func TestResolveFixtures(t *testing.T) {
	for _, tc := range []struct {
		path      string
		check     Func
		with, off Verdict
	}{
		{"testdata/kv/valid-info-writes-placed-by-commit-log.jsonl", KV, Valid, Valid},
		{"testdata/kv/invalid-stale-read-with-info-writes-placed-by-commit-log.jsonl", KV, Invalid, Invalid},
		{"testdata/register/valid-info-write-committed-before-read.jsonl", Register, Valid, Valid},
		{"testdata/register/invalid-info-write-committed-before-stale-read.jsonl", Register, Invalid, Valid},
	} {
		_, ops, _ := readFixture(t, tc.path)
		for _, off := range []bool{false, true} {
			want := tc.with
			if off {
				want = tc.off
			}
			if res := tc.check(t.Context(), &Input{Ops: ops, NoResolve: off, Timeout: time.Minute}); res.Verdict != want {
				t.Errorf("%s, NoResolve %v: verdict %s (%s), want %s", tc.path, off, res.Verdict, res.Summary, want)
			}
		}
	}
}
