package checker

import (
	"math"
	"slices"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/history"
)

// kvCounts counts the operations checked; pinned are the info writes shown
// to have happened, logged those of them the commit log showed.
// kvCounts are what the summary tells of the history: idle counts the
// writes of unknown outcome dropIdle left out.
type kvCounts struct{ checked, info, pinned, logged, foreign, serializable, idle int }

// kvHistory is the history prepared for the search.
type kvHistory struct {
	keys   []string // key index -> name, sorted
	values []string // value id -> value; 0 is "no value"
	ops    []porcupine.Operation
	// known holds every revision a known write produced: an info write
	// whose effect nobody saw cannot have produced one of them.
	known     map[int64]bool
	knownBits []uint64
	// quietRevs[k] has bit g set when no write can have changed key k at
	// revision g (see markQuiet).
	quietRevs [][]uint64
	// maxRev is the highest revision any operation saw; an info write
	// taking effect after it is indistinguishable from one that never did.
	maxRev int64
	// mustPlace counts the operations every linearization must place
	// before the end: all but the info ones no read pinned.
	mustPlace int
	// initRev is the revision before the first operation: 1 on a fresh
	// etcd, lower if some operation says so.
	initRev int64
	// start, when set, is the state the search starts from instead: a
	// segment's (see segments).
	start      *kvState
	permissive bool
	counts     kvCounts
}

// buildKV prepares the kv workload's operations for the search, with the
// writes of the register and watch workloads, which bump the same revision.
//
// Writes of unknown outcome that res resolved are placed at their
// revision, or left out when they did not take effect; deletes of unknown
// outcome fill the gaps where res's commit log shows their key deleted
// (see placeDeletes). res is nil when resolution is switched off.
func buildKV(ops []history.Op, res *resolution) *kvHistory {
	h := &kvHistory{known: map[int64]bool{}, initRev: 1}
	var kvOps, foreign []*history.Op
	var end int64
	for i := range ops {
		op := &ops[i]
		end = max(end, op.Invoke.Time)
		if !op.Pending() {
			end = max(end, op.Complete.Time)
		}
		switch {
		case isKVOp(op.F):
			kvOps = append(kvOps, op)
		case isRegisterOp(op.F) || isWatchWrite(op.F):
			foreign = append(foreign, op)
		case op.F == WatchOpen || op.F == WatchRecv || op.F == WatchRead:
			// Watching and reading change no revision.
		default:
			h.counts.foreign++
			h.permissive = true
		}
	}
	if end < math.MaxInt64 {
		end++
	}
	ids := newKVIDs(h, kvOps)
	observed := observedValues(kvOps)
	for _, op := range kvOps {
		info := op.Type() != history.OK
		switch {
		case op.Type() == history.Fail:
			continue // it certainly did not happen
		case op.F == KVCompact && info:
			continue // it changes no data
		case isKVRead(op.F) && (info || op.Complete.Serializable || op.Invoke.Serializable || op.Invoke.AtRevision > 0):
			// A read of unknown outcome told nothing; a serializable one,
			// or one of a past revision, is serializableReads'.
			if !info {
				h.counts.serializable++
			}
			continue
		}
		r, resolved := res.of(op)
		if resolved && r.drop {
			continue // it did not take effect
		}
		o := ids.op(op)
		ret := op.Complete.Time
		if o.info {
			ret = pin(o, observed, end)
		}
		if resolved && !o.pinned {
			o.pinned, o.rev, o.succeeded = true, r.rev, true
			ret = min(r.ret, end)
			h.counts.logged++
		}
		h.add(o, ret)
	}
	for _, op := range foreign {
		h.addBump(op, end, res)
	}
	if res != nil {
		h.placeDeletes(res.log)
	}
	h.dropIdle()
	numberClients(h.ops)
	h.markQuiet(kvOps, ids.keys)
	h.indexKnown()
	return h
}

// kvIDs gives keys and values small ids; the state is then a few integers
// per key, cheap to copy, compare and hash.
type kvIDs struct {
	h    *kvHistory // its keys and values name the ids
	keys map[string]int
	vals map[string]int32
}

// newKVIDs numbers every key ops name, in key order, and the empty value 0.
func newKVIDs(h *kvHistory, ops []*history.Op) *kvIDs {
	ids := &kvIDs{h: h, keys: map[string]int{}, vals: map[string]int32{"": 0}}
	h.values = []string{""}
	addKey := func(k string) {
		if _, ok := ids.keys[k]; !ok {
			ids.keys[k] = -1
		}
	}
	for _, op := range ops {
		if op.F != KVRange && op.F != KVRangeSerializable && op.F != KVList && op.F != KVCompact {
			addKey(op.Invoke.Key)
		}
		for _, kv := range op.Complete.KVs {
			addKey(kv.Key)
		}
		for _, c := range op.Invoke.Compares {
			addKey(c.Key)
		}
		for _, t := range slices.Concat(op.Invoke.Then, op.Invoke.Else) {
			addKey(t.Key)
		}
		for _, r := range op.Complete.Responses {
			for _, kv := range r.KVs {
				addKey(kv.Key)
			}
		}
	}
	delete(ids.keys, "")
	for k := range ids.keys {
		h.keys = append(h.keys, k)
	}
	slices.Sort(h.keys)
	for i, k := range h.keys {
		ids.keys[k] = i
	}
	return ids
}

// val is v's id, given on first sight.
func (ids *kvIDs) val(v string) int32 {
	if id, ok := ids.vals[v]; ok {
		return id
	}
	id := int32(len(ids.h.values))
	ids.vals[v] = id
	ids.h.values = append(ids.h.values, v)
	return id
}

func (ids *kvIDs) kv(kv history.KV) kvKV {
	return kvKV{key: ids.keys[kv.Key], val: ids.val(kv.Value), create: kv.CreateRevision, mod: kv.ModRevision, ver: kv.Version}
}

func (ids *kvIDs) kvs(in []history.KV) []kvKV {
	var out []kvKV
	for _, kv := range in {
		out = append(out, ids.kv(kv))
	}
	return out
}

// op is the model's input for a kv operation of known or unknown outcome.
func (ids *kvIDs) op(op *history.Op) *kvOp {
	in, out := op.Invoke, op.Complete
	o := &kvOp{op: op, info: op.Type() != history.OK, rev: out.Revision}
	switch op.F {
	case KVGet, KVRange, KVGetSerializable, KVRangeSerializable, KVList:
		o.kind = kindRead
		if in.RangeEnd == "" {
			o.keys = []int{ids.keys[in.Key]}
		} else {
			for i, k := range ids.h.keys {
				if k >= in.Key && k < in.RangeEnd {
					o.keys = append(o.keys, i)
				}
			}
		}
		o.limit, o.keysOnly = in.Limit, in.KeysOnly
		o.kvs, o.count, o.more = ids.kvs(out.KVs), out.Count, out.More
		if op.F == KVList {
			o.limit = 0 // the pages together
		}
	case KVPut:
		o.kind, o.key, o.val, o.prevKV = kindPut, ids.keys[in.Key], ids.val(in.Value), in.PrevKV
		if out.Prev != nil {
			p := ids.kv(*out.Prev)
			o.prev = &p
		}
	case KVDelete:
		o.kind, o.key, o.prevKV, o.deleted = kindDelete, ids.keys[in.Key], in.PrevKV, out.Deleted
		if out.Prev != nil {
			p := ids.kv(*out.Prev)
			o.prev = &p
		}
	case KVCompact:
		o.kind, o.compacts = kindCompact, in.CompactRevision
	case KVTxn:
		o.kind, o.succeeded = kindTxn, out.Succeeded
		for _, c := range in.Compares {
			o.compares = append(o.compares, kvCmp{key: ids.keys[c.Key], target: c.Target, op: c.Op, val: ids.val(c.Value), number: c.Number})
		}
		conv := func(ts []history.TxnOp) []kvTxnOp {
			var out []kvTxnOp
			for _, t := range ts {
				out = append(out, kvTxnOp{f: t.F, key: ids.keys[t.Key], val: ids.val(t.Value), kvs: ids.kvs(t.KVs), deleted: t.Deleted})
			}
			return out
		}
		o.then, o.els, o.responses = conv(in.Then), conv(in.Else), conv(out.Responses)
	}
	return o
}

// seenValue is where reads saw a value: each value identifies the one
// write of it, and the read's mod revision is that write's revision.
type seenValue struct {
	mod int64
	by  int64 // earliest return of a read that saw it
}

// observedValues is what the ok operations saw, by key and value.
func observedValues(ops []*history.Op) map[[2]string]seenValue {
	observed := map[[2]string]seenValue{}
	observe := func(op *history.Op, kvs ...history.KV) {
		for _, kv := range kvs {
			if kv.Value == "" {
				continue
			}
			k := [2]string{kv.Key, kv.Value}
			if s, ok := observed[k]; !ok || op.Complete.Time < s.by {
				observed[k] = seenValue{mod: kv.ModRevision, by: op.Complete.Time}
			}
		}
	}
	for _, op := range ops {
		if op.Type() != history.OK {
			continue
		}
		observe(op, op.Complete.KVs...)
		if op.Complete.Prev != nil {
			observe(op, *op.Complete.Prev)
		}
		for _, r := range op.Complete.Responses {
			observe(op, r.KVs...)
		}
	}
	return observed
}

// pin marks an info write whose value a read returned as pinned: it
// happened, at the revision the read reported, before that read returned.
// It returns when the write is known to have taken effect: then, or else
// end, after every other event.
func pin(o *kvOp, observed map[[2]string]seenValue, end int64) int64 {
	in := o.op.Invoke
	var puts []history.TxnOp
	switch o.op.F {
	case KVPut:
		puts = []history.TxnOp{{F: "put", Key: in.Key, Value: in.Value}}
	case KVTxn:
		puts = in.Then
	}
	for _, p := range puts {
		if s, ok := observed[[2]string{p.Key, p.Value}]; ok && p.F == "put" {
			o.pinned, o.rev, o.succeeded = true, s.mod, true
			return max(in.Time, s.by)
		}
	}
	return end
}

// add gives o, returning at ret, to the search, and notes what it tells of
// the revisions.
func (h *kvHistory) add(o *kvOp, ret int64) {
	if writes(o) {
		h.known[o.rev] = true
		h.initRev = min(h.initRev, o.rev-1)
	} else if !o.info {
		h.initRev = min(h.initRev, o.rev)
	}
	if !o.info || o.pinned {
		h.mustPlace++
		h.maxRev = max(h.maxRev, o.rev)
	}
	h.push(o, ret)
}

// push gives o, returning at ret, to the search, counted.
func (h *kvHistory) push(o *kvOp, ret int64) {
	h.counts.checked++
	if o.info {
		h.counts.info++
		if o.pinned {
			h.counts.pinned++
		}
	}
	h.ops = append(h.ops, porcupine.Operation{Input: o, Output: o, Call: o.op.Invoke.Time, Return: ret, Metadata: o.op})
}

// addBump gives another workload's write to the search: it bumps the
// revision. One of unknown outcome that res resolved is placed at its
// revision, or left out, as the kv workload's own are.
func (h *kvHistory) addBump(op *history.Op, end int64, res *resolution) {
	o := &kvOp{op: op, kind: kindBump, info: op.Type() != history.OK, rev: op.Complete.Revision}
	switch {
	case op.Type() == history.Fail, op.F == history.Read:
		return
	case !o.info && op.F == history.CAS && !op.Complete.Succeeded:
		return // a read in effect
	case !o.info && op.F == WatchDelete && op.Complete.Deleted == 0:
		return // it deleted nothing, so took no revision
	}
	ret := op.Complete.Time
	r, resolved := res.of(op)
	switch {
	case resolved && r.drop:
		return // it did not take effect
	case resolved:
		o.pinned, o.rev = true, r.rev
		ret = min(r.ret, end)
		h.counts.logged++
	case o.info:
		ret = end
	}
	if !o.info || o.pinned {
		h.known[o.rev] = true
		h.maxRev = max(h.maxRev, o.rev)
		h.initRev = min(h.initRev, o.rev-1)
		h.mustPlace++
	}
	h.push(o, ret)
}

// numberClients gives the operations small client ids, one per process,
// for the visualization.
func numberClients(ops []porcupine.Operation) {
	procs := map[history.Process]int{}
	var ids []history.Process
	for _, op := range ops {
		p := op.Metadata.(*history.Op).Process
		if _, ok := procs[p]; !ok {
			procs[p] = 0
			ids = append(ids, p)
		}
	}
	slices.Sort(ids)
	for i, p := range ids {
		procs[p] = i
	}
	for i := range ops {
		ops[i].ClientId = procs[ops[i].Metadata.(*history.Op).Process]
	}
}

// indexKnown keeps h.known as bits too, for isKnown.
func (h *kvHistory) indexKnown() {
	if h.maxRev >= 0 && h.maxRev < 1<<30 {
		h.knownBits = make([]uint64, h.maxRev/64+1)
		for r := range h.known {
			if r >= 0 && r <= h.maxRev {
				h.knownBits[r/64] |= 1 << (r % 64)
			}
		}
	}
}

// isKnown is h.known[rev], faster: the search asks it at every step.
func (h *kvHistory) isKnown(rev int64) bool {
	if h.knownBits == nil || rev < 0 || rev/64 >= int64(len(h.knownBits)) {
		return h.known[rev]
	}
	return h.knownBits[rev/64]&(1<<(rev%64)) != 0
}

// markQuiet records, per key, the revisions at which no write can have
// changed it: a linearizable read at revision r that found the key with
// mod revision m proves that nothing wrote it in (m, r]. It is what lets
// the search tell which info write filled a revision gap without trying
// each of them there.
func (h *kvHistory) markQuiet(ops []*history.Op, keyIdx map[string]int) {
	n := int(h.maxRev) + 2
	if n <= 0 || n > 1<<26 {
		return // no revisions, or too many to keep a map of
	}
	diff := make([][]int32, len(h.keys))
	mark := func(key string, m, r int64) {
		k, ok := keyIdx[key]
		if !ok || m < 0 || r <= m || r >= int64(n) {
			return
		}
		if diff[k] == nil {
			diff[k] = make([]int32, n+1)
		}
		diff[k][m+1]++
		diff[k][r+1]--
	}
	for _, op := range ops {
		out := op.Complete
		if op.Type() != history.OK || op.Invoke.Serializable || out.Serializable || op.Invoke.AtRevision > 0 {
			continue
		}
		for _, kv := range out.KVs {
			mark(kv.Key, kv.ModRevision, out.Revision)
		}
		for _, r := range out.Responses {
			for _, kv := range r.KVs {
				mark(kv.Key, kv.ModRevision, out.Revision)
			}
		}
	}
	h.quietRevs = make([][]uint64, len(h.keys))
	for k, d := range diff {
		if d == nil {
			continue
		}
		bits := make([]uint64, (n+63)/64)
		var c int32
		for g := range n {
			c += d[g]
			if c > 0 {
				bits[g/64] |= 1 << (g % 64)
			}
		}
		h.quietRevs[k] = bits
	}
}

func (h *kvHistory) quiet(key int, rev int64) bool {
	if key >= len(h.quietRevs) || h.quietRevs[key] == nil || rev < 0 || rev/64 >= int64(len(h.quietRevs[key])) {
		return false
	}
	return h.quietRevs[key][rev/64]&(1<<(rev%64)) != 0
}

// writes reports whether an ok or pinned operation is known to have
// produced its revision.
func writes(o *kvOp) bool {
	if o.info && !o.pinned {
		return false
	}
	switch o.kind {
	case kindPut:
		return true
	case kindDelete:
		return o.deleted > 0
	case kindTxn:
		if !o.succeeded {
			return false
		}
		for i, t := range o.then {
			if t.f == "put" || (i < len(o.responses) && o.responses[i].deleted > 0) {
				return true
			}
		}
	}
	return false
}
