package checker

import (
	"cmp"
	"math"
	"slices"
)

// placeDeletes gives the commit log's deletes that no known write holds to
// the deletes of unknown outcome. A revision no known write holds (a gap)
// that the log saw completely, and at which it shows one key deleted and
// nothing else, was a delete of that key; only a delete of that key can
// fill it (or a transaction deleting it alone: see below), and which of
// the deletes did is immaterial: they have the same effect
// and each may take effect at any time after its invocation. So the gaps
// of a key are taken in revision order and each given the first-invoked
// delete of the key still of unknown outcome that was invoked before the
// gap had to be filled (before any operation pinned to that revision or a
// later one returned): one that may fill a gap may fill every later one,
// so if any assignment places them all, this one does. A delete so placed
// becomes a write pinned to the gap's revision, which makes the state at
// every revision known and lets the history be cut there (see segments);
// the search loses only choices the log rules out. A gap no such delete
// can fill stays one, for the search.
func (h *kvHistory) placeDeletes(log *commitIndex) {
	if log == nil || h.permissive {
		return
	}
	putAt := map[int64]bool{}
	for _, rev := range log.at {
		putAt[rev] = true
	}
	gapKey := map[int64]string{} // gap -> the one key deleted there
	multi := map[int64]bool{}
	for key, revs := range log.deletes {
		for _, g := range revs {
			if g <= h.initRev || g > h.maxRev || h.known[g] || putAt[g] || !log.seen.covers(g, g) {
				continue
			}
			// The log may show one delete more than once (each recorder
			// and watcher that saw it): only another key makes it many.
			if k, dup := gapKey[g]; dup && k != key {
				multi[g] = true
			}
			gapKey[g] = key
		}
	}
	for g := range multi {
		delete(gapKey, g)
	}
	if len(gapKey) == 0 {
		return
	}
	deadline := h.gapDeadlines()
	cands := map[string][]*kvOp{} // deletes of unknown outcome, by key
	// A transaction of unknown outcome may delete a key too, but only if
	// its compares hold where it lands; a delete put in its place could
	// make a gap it alone could fill unfillable. Its keys are left to the
	// search, and so is everything when a range delete's keys are unknown.
	other := map[string]bool{}
	for _, op := range h.ops {
		o := op.Input.(*kvOp)
		switch {
		case !o.info || o.pinned:
		case o.kind == kindDelete && o.op.Invoke.RangeEnd != "":
			return
		case o.kind == kindDelete:
			cands[h.keys[o.key]] = append(cands[h.keys[o.key]], o)
		case o.kind == kindBump && o.op.F == WatchDelete:
			// Another workload's delete of a key of its own: it only
			// bumps the revision, which is all the gap needs.
			cands[o.op.Invoke.Key] = append(cands[o.op.Invoke.Key], o)
		case o.kind == kindTxn:
			for _, t := range slices.Concat(o.then, o.els) {
				if t.f == "delete" {
					other[h.keys[t.key]] = true
				}
			}
		}
	}
	gaps := map[string][]int64{}
	for g, key := range gapKey {
		gaps[key] = append(gaps[key], g)
	}
	for key, gs := range gaps {
		if other[key] {
			continue
		}
		slices.Sort(gs)
		ds := cands[key]
		slices.SortStableFunc(ds, func(a, b *kvOp) int { return cmp.Compare(a.op.Invoke.Time, b.op.Invoke.Time) })
		next, used := 0, 0 // ds[used:next] may fill the gap at hand
		for _, g := range gs {
			d := deadline(g)
			for next < len(ds) && ds[next].op.Invoke.Time <= d {
				next++
			}
			if used == next {
				continue // no delete can have filled it: the search decides
			}
			o := ds[used]
			used++
			o.pinned, o.rev, o.deleted = true, g, 1
			h.known[g] = true
			h.mustPlace++
			h.counts.pinned++
			h.counts.logged++
		}
	}
}

// gapDeadlines returns when a revision g not yet held must have been
// filled: before the first return of an operation pinned to g or a later
// revision. A write invoked after that comes after it, so takes a later
// revision than g, if any.
func (h *kvHistory) gapDeadlines() func(g int64) int64 {
	type pin struct{ rev, ret int64 }
	var pins []pin
	for _, op := range h.ops {
		if o := op.Input.(*kvOp); !o.info || o.pinned {
			pins = append(pins, pin{o.rev, op.Return})
		}
	}
	slices.SortFunc(pins, func(a, b pin) int { return cmp.Compare(a.rev, b.rev) })
	firstRet := make([]int64, len(pins)+1) // the earliest return of pins[i:]
	firstRet[len(pins)] = math.MaxInt64
	for i := len(pins) - 1; i >= 0; i-- {
		firstRet[i] = min(firstRet[i+1], pins[i].ret)
	}
	return func(g int64) int64 {
		i, _ := slices.BinarySearchFunc(pins, g, func(p pin, g int64) int { return cmp.Compare(p.rev, g) })
		return firstRet[i]
	}
}

// dropIdle leaves out the writes of unknown outcome that can have changed
// nothing an operation saw. A write that took effect took a revision of
// its own; each revision up to the last any operation saw is a known
// write's, except the gaps, and a write invoked after the last gap's
// deadline comes after every gap. Such a write did not take effect, or did
// after everything the history saw, where it changes no verdict; left in,
// it stays in flight to the end, and every one the search carries doubles
// the states it must tell apart.
func (h *kvHistory) dropIdle() {
	if h.permissive {
		return
	}
	after := int64(math.MinInt64) // no gap: every such write is idle
	for g := h.maxRev; g > h.initRev; g-- {
		if !h.known[g] {
			after = h.gapDeadlines()(g)
			break
		}
	}
	kept := h.ops[:0]
	for _, op := range h.ops {
		o := op.Input.(*kvOp)
		if o.info && !o.pinned && o.kind != kindCompact && o.kind != kindBump && op.Call > after {
			h.counts.idle++
			continue
		}
		kept = append(kept, op)
	}
	h.ops = kept
}
