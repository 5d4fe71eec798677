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
	in := &Input{Ops: ops, CommitLog: log, Timeout: time.Minute}
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
	h := (&Input{Ops: ops, CommitLog: log}).kvHistory()
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
	if res := KV(t.Context(), &Input{Ops: bad, CommitLog: log, Timeout: time.Minute}); res.Verdict != Invalid {
		t.Fatalf("stale read after a cut: verdict %s: %s", res.Verdict, res.Summary)
	}
}

// TestKVSegmentsUnknown: without the commit log the writes of unknown
// outcome stay in flight; they all go to the last segment, which starts
// below the first revision no known write holds, and the history is
// still valid.
func TestKVSegmentsUnknown(t *testing.T) {
	ops := genKVHistory(20_000, 0.01, 2)
	in := &Input{Ops: ops, NoResolve: true, Timeout: time.Minute}
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
