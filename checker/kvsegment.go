package checker

import (
	"cmp"
	"context"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/anishathalye/porcupine"
)

// kvSegmentOps is the size a segment grows to before it may be cut: big
// enough that cutting costs little, small enough that porcupine's cache,
// whose every entry holds a bit per operation of the segment, stays small.
const kvSegmentOps = 2000

// segments cuts the history into pieces checked on their own (see check).
//
// A cut at revision R puts every operation pinned to a revision up to R
// (an ok or pinned write of that revision, a read or non-writing ok
// operation that saw it) in the piece before, the rest in the piece after.
// The revisions order them already: the model's revision never goes back,
// so in every linearization all of the first come before all of the
// second. The cut is exact when
//   - no operation after it returned before one before it was invoked, so
//     the two linearizations joined respect real time (where one did, the
//     history may still be invalid: it is left for the search, uncut);
//   - the state at R is known: every revision up to R is a known write's
//     (no gap), so replaying them in revision order gives it, and it is
//     where the piece after starts;
//   - no write of unknown outcome can take effect on both sides. Such a
//     write stays in flight forever (it may take effect at any gap after
//     its invocation, or never), so cuts are made only below the first
//     gap, and every such write goes to the last piece, which holds every
//     gap: there it has all the choices it had in the whole history.
//
// With gaps allowed (other workloads bump the revision) the state at a
// revision is not known, and the history stays whole; so it does when a
// compaction could need a later state than its own revision.
func (h *kvHistory) segments() []*kvHistory {
	if h.permissive || len(h.ops) <= kvSegmentOps {
		return []*kvHistory{h}
	}
	type pinned struct {
		i     int
		class int64 // the revision it is pinned to
		write bool
	}
	var known []pinned
	var floating []int // unknown outcome: they go to the last piece
	for i, op := range h.ops {
		o := op.Input.(*kvOp)
		switch {
		case o.kind == kindCompact && o.compacts > o.rev:
			return []*kvHistory{h}
		case o.info && !o.pinned:
			floating = append(floating, i)
		default:
			known = append(known, pinned{i, o.rev, writes(o) || o.kind == kindBump})
		}
	}
	// Writes before the other operations of their revision: those see it.
	slices.SortStableFunc(known, func(a, b pinned) int {
		if c := cmp.Compare(a.class, b.class); c != 0 {
			return c
		}
		switch {
		case a.write == b.write:
			return 0
		case a.write:
			return -1
		}
		return 1
	})
	firstGap := h.maxRev + 1
	for g := h.initRev + 1; g <= h.maxRev; g++ {
		if !h.isKnown(g) {
			firstGap = g
			break
		}
	}
	minRet := make([]int64, len(known)+1) // earliest return from i on
	minRet[len(known)] = math.MaxInt64
	for i := len(known) - 1; i >= 0; i-- {
		minRet[i] = min(minRet[i+1], h.ops[known[i].i].Return)
	}

	indices := func(ps []pinned) []int {
		out := make([]int, len(ps))
		for i, p := range ps {
			out[i] = p.i
		}
		return out
	}
	var out []*kvHistory
	state := h.init()
	start, from := state, 0 // the current piece's state and first of known
	var maxCall int64
	replayOK := true
	for i, p := range known {
		op := h.ops[p.i]
		maxCall = max(maxCall, op.Call)
		if p.write && replayOK {
			var ok bool
			if ok, state = h.step(state, op.Input.(*kvOp)); !ok {
				replayOK = false // invalid here: the search will say so
			}
		}
		if i+1 == len(known) || !replayOK || p.class >= firstGap || known[i+1].class == p.class ||
			i+1-from < kvSegmentOps || maxCall > minRet[i+1] {
			continue
		}
		out = append(out, h.piece(start, indices(known[from:i+1])))
		start, from = &kvState{rev: state.rev, keys: state.keys}, i+1
	}
	rest := append(indices(known[from:]), floating...)
	return append(out, h.piece(start, rest))
}

// piece is h restricted to the operations idx, from the state start.
func (h *kvHistory) piece(start *kvState, idx []int) *kvHistory {
	p := *h
	p.start, p.mustPlace = start, 0
	slices.Sort(idx)
	p.ops = make([]porcupine.Operation, len(idx))
	for j, i := range idx {
		p.ops[j] = h.ops[i]
		if o := p.ops[j].Input.(*kvOp); !o.info || o.pinned {
			p.mustPlace++
		}
	}
	numberClients(p.ops)
	return &p
}

// check runs porcupine on every segment, in parallel. The first invalid
// segment (in history order, of those that finished) makes the history
// invalid and is returned, to explain; any undecided one makes it unknown.
func (h *kvHistory) checkSegments(ctx context.Context) (Verdict, *kvHistory) {
	segs := h.segments()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	verdicts := make([]Verdict, len(segs))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, s := range segs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if verdicts[i], _ = s.check(ctx, false); verdicts[i] == Invalid {
				cancel()
			}
		})
	}
	wg.Wait()
	verdict := Valid
	for i, v := range verdicts {
		if v == Invalid {
			return Invalid, segs[i]
		}
		verdict = Worst(verdict, v)
	}
	return verdict, nil
}
