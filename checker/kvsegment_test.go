package checker

import (
	"slices"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// TestKVSegments checks a history long enough to be cut: with the commit
// log every write is placed, so it is; valid, and every operation is in
// exactly one segment.
func TestKVSegments(t *testing.T) {
	ops, log := genKVHistoryLog(20_000, 0.10, 3)
	in := &Input{Ops: shared(ops), CommitLog: log, Timeout: time.Minute}
	h := in.kvHistory()
	segs := h.segments()
	if len(segs) < 2 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	n := 0
	for _, s := range segs {
		n += len(s.ops)
	}
	if n != len(h.ops) {
		t.Errorf("segments hold %d operations, the history %d", n, len(h.ops))
	}
	if res := KV(t.Context(), in); res.Verdict != Valid {
		t.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
	}
}

// TestKVStaleReadAfterCut makes a get invoked after the write that follows
// a cut returned answer the state at the cut, revision and all: it fits the
// segment before, the linearizable state of its revision, but real time
// puts it after that write, so the history is not linearizable.
func TestKVStaleReadAfterCut(t *testing.T) {
	ops, log := genKVHistoryLog(20_000, 0.0, 5)
	h := (&Input{Ops: shared(ops), CommitLog: log}).kvHistory()
	segs := h.segments()
	if len(segs) < 2 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	cut := segs[1].start
	var wrote *history.Op // the write after the cut
	for i := range ops {
		if op := &ops[i]; op.Type() == history.OK && op.Complete.Revision == cut.rev+1 && (op.F == KVPut || op.F == KVTxn || op.F == KVDelete) {
			wrote = op
		}
	}
	if wrote == nil {
		t.Fatalf("no write of revision %d", cut.rev+1)
	}
	bad := slices.Clone(ops)
	for i := range bad {
		op := &bad[i]
		if op.F != KVGet || op.Type() != history.OK || op.Invoke.Serializable || op.Invoke.Time <= wrote.Complete.Time {
			continue
		}
		k := cut.keys[slices.Index(h.keys, op.Invoke.Key)]
		op.Complete.Revision, op.Complete.KVs, op.Complete.Count = cut.rev, nil, 0
		if k.val != 0 {
			op.Complete.KVs = []history.KV{{Key: op.Invoke.Key, Value: h.values[k.val], CreateRevision: k.create, ModRevision: k.mod, Version: k.ver}}
			op.Complete.Count = 1
		}
		break
	}
	if res := KV(t.Context(), &Input{Ops: shared(bad), CommitLog: log, Timeout: time.Minute}); res.Verdict != Invalid {
		t.Fatalf("stale read after a cut: verdict %s: %s", res.Verdict, res.Summary)
	}
}

// TestKVSegmentsUnknown: without the commit log the writes of unknown
// outcome stay in flight; they all go to the last segment, which starts
// below the first revision no known write holds, and the history is
// still valid.
func TestKVSegmentsUnknown(t *testing.T) {
	ops := genKVHistory(20_000, 0.01, 2)
	in := &Input{Ops: shared(ops), NoResolve: true, Timeout: time.Minute}
	h := in.kvHistory()
	segs := h.segments()
	floating := 0
	for _, op := range h.ops {
		if o := op.Input.(*kvOp); o.info && !o.pinned {
			floating++
		}
	}
	last := segs[len(segs)-1]
	for _, s := range segs {
		for _, op := range s.ops {
			if o := op.Input.(*kvOp); o.info && !o.pinned && s != last {
				t.Fatalf("an operation of unknown outcome outside the last segment")
			}
		}
	}
	for g := h.initRev + 1; g <= last.start.rev; g++ {
		if !h.isKnown(g) {
			t.Fatalf("the last segment starts at revision %d, above the unknown revision %d", last.start.rev, g)
		}
	}
	if floating == 0 {
		t.Fatal("no operation of unknown outcome left: the test tests nothing")
	}
	if res := KV(t.Context(), in); res.Verdict != Valid {
		t.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
	}
}

// TestPlaceDeletes: a delete of unknown outcome fills the gap where the
// commit log shows its key deleted only if it was invoked in time, and one
// delete fills one gap.
func TestPlaceDeletes(t *testing.T) {
	putAt := func(v string, at, rev int64) history.Op {
		return history.Op{Process: 0, F: KVPut,
			Invoke:   &history.Event{Type: history.Invoke, F: KVPut, Key: "k", Value: v, Time: at},
			Complete: &history.Event{Type: history.OK, F: KVPut, Key: "k", Revision: rev, Time: at + 10}}
	}
	getAt := func(at, rev int64) history.Op {
		return history.Op{Process: 2, F: KVGet,
			Invoke:   &history.Event{Type: history.Invoke, F: KVGet, Key: "k", Time: at},
			Complete: &history.Event{Type: history.OK, F: KVGet, Key: "k", Revision: rev, Time: at + 10}}
	}
	put, get := putAt("v1", 0, 2), getAt(30, 3)
	del := func(p history.Process, at int64) history.Op {
		return history.Op{Process: p, F: KVDelete,
			Invoke:   &history.Event{Type: history.Invoke, F: KVDelete, Key: "k", Time: at},
			Complete: &history.Event{Type: history.Info, F: KVDelete, Time: at + 10, Error: "context deadline exceeded"}}
	}
	log := &CommitLog{Commits: []Commit{{Revision: 2, Key: "k", Value: "v1"}, {Revision: 3, Key: "k", Delete: true}}, Seen: []RevSpan{{From: 2, To: 3}}}
	for _, tc := range []struct {
		name string
		ops  []history.Op
		want Verdict
	}{
		{"in time", []history.Op{put, del(1, 20), get}, Valid},
		{"too late", []history.Op{put, get, del(1, 50)}, Invalid},
	} {
		for _, noResolve := range []bool{false, true} {
			res := KV(t.Context(), &Input{Ops: shared(tc.ops), CommitLog: log, NoResolve: noResolve, Timeout: time.Minute})
			if res.Verdict != tc.want {
				t.Errorf("%s (no-resolve %v): verdict %s, want %s: %s", tc.name, noResolve, res.Verdict, tc.want, res.Summary)
			}
		}
	}
	// Two deletes of k in the log (k put again between) and one delete of
	// unknown outcome: the second gap has no delete to fill it.
	put2, get2 := putAt("v2", 50, 4), getAt(70, 5)
	log2 := &CommitLog{Commits: append(slices.Clone(log.Commits), Commit{Revision: 4, Key: "k", Value: "v2"}, Commit{Revision: 5, Key: "k", Delete: true}), Seen: []RevSpan{{From: 2, To: 5}}}
	ops := []history.Op{put, del(1, 20), get, put2, get2}
	if res := KV(t.Context(), &Input{Ops: shared(ops), CommitLog: log2, Timeout: time.Minute}); res.Verdict != Invalid {
		t.Errorf("two gaps, one delete: verdict %s: %s", res.Verdict, res.Summary)
	}
	ops = append(ops, del(3, 55))
	if res := KV(t.Context(), &Input{Ops: shared(ops), CommitLog: log2, Timeout: time.Minute}); res.Verdict != Valid {
		t.Errorf("two gaps, two deletes: verdict %s: %s", res.Verdict, res.Summary)
	}
}

// TestPlaceDeletesTxn: a transaction of unknown outcome that deletes k only
// while k holds v1 can fill the first gap of k and not the second; the
// delete of unknown outcome must be left for the second, so deletes are
// not placed on k.
func TestPlaceDeletesTxn(t *testing.T) {
	put := func(v string, rev, at int64) history.Op {
		return history.Op{Process: 0, F: KVPut,
			Invoke:   &history.Event{Type: history.Invoke, F: KVPut, Key: "k", Value: v, Time: at},
			Complete: &history.Event{Type: history.OK, F: KVPut, Key: "k", Revision: rev, Time: at + 10}}
	}
	info := func(f string) *history.Event {
		return &history.Event{Type: history.Info, F: f, Time: 30, Error: "context deadline exceeded"}
	}
	del := history.Op{Process: 1, F: KVDelete, Invoke: &history.Event{Type: history.Invoke, F: KVDelete, Key: "k", Time: 20}, Complete: info(KVDelete)}
	txn := history.Op{Process: 2, F: KVTxn, Invoke: &history.Event{Type: history.Invoke, F: KVTxn, Time: 20,
		Txn: &history.Txn{Compares: []history.Compare{{Key: "k", Target: "value", Op: "=", Value: "v1"}}, Then: []history.TxnOp{{F: "delete", Key: "k"}}, Else: []history.TxnOp{{F: "get", Key: "k"}}},
	}, Complete: info(KVTxn)}
	get := history.Op{Process: 3, F: KVGet,
		Invoke:   &history.Event{Type: history.Invoke, F: KVGet, Key: "k", Time: 70},
		Complete: &history.Event{Type: history.OK, F: KVGet, Key: "k", Revision: 5, Time: 80}}
	log := &CommitLog{Commits: []Commit{{Revision: 2, Key: "k", Value: "v1"}, {Revision: 3, Key: "k", Delete: true},
		{Revision: 4, Key: "k", Value: "v2"}, {Revision: 5, Key: "k", Delete: true}}, Seen: []RevSpan{{From: 2, To: 5}}}
	ops := []history.Op{put("v1", 2, 0), del, txn, put("v2", 4, 50), get}
	for _, noResolve := range []bool{false, true} {
		if res := KV(t.Context(), &Input{Ops: shared(ops), CommitLog: log, NoResolve: noResolve, Timeout: time.Minute}); res.Verdict != Valid {
			t.Errorf("no-resolve %v: verdict %s: %s", noResolve, res.Verdict, res.Summary)
		}
	}
}

// TestKVSegmentsWatchWrites: the watch workload's writes hold revisions of
// their own, and with the commit log those of unknown outcome are placed
// too, deletes included, so a kv,watch history is cut as a kv one is;
// valid.
func TestKVSegmentsWatchWrites(t *testing.T) {
	ops, log := genKVWatchHistoryLog(20_000, 0.05, 4, 0.3)
	// Two recorders: each change is in the log twice.
	log.Commits = append(log.Commits, log.Commits...)
	in := &Input{Ops: shared(ops), CommitLog: log, Timeout: time.Minute}
	h := in.kvHistory()
	if h.permissive {
		t.Fatal("revision gaps allowed, though every writer is known")
	}
	for g := h.initRev + 1; g <= h.maxRev; g++ {
		if !h.isKnown(g) {
			t.Fatalf("revision %d is a gap: the commit log shows who wrote it", g)
		}
	}
	if segs := h.segments(); len(segs) < 2 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	if res := KV(t.Context(), in); res.Verdict != Valid {
		t.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
	}
}

// shared does for ops made in memory what history.Ops does for those it
// pairs: their events' missing parts read as zero (history.Event.Shared).
func shared(ops []history.Op) []history.Op {
	for _, op := range ops {
		op.Invoke.Shared()
		op.Complete.Shared()
	}
	return ops
}
