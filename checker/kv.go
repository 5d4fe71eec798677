package checker

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/history"
)

// KVChecker is the name in Result.Checker.
const KVChecker = "linearizable-kv"

// Operation names of the kv workload, declared where their meaning is
// checked; its generator (workloads/kv.go) records them. They differ from
// the register's (read, write, cas) so that both can run in one history and
// each checker picks its own.
const (
	KVGet     = "kv-get"
	KVRange   = "kv-range"
	KVPut     = "kv-put"
	KVDelete  = "kv-delete"
	KVTxn     = "kv-txn"
	KVCompact = "kv-compact"

	// Serializable reads have names of their own, so that the statistics
	// compare their latency with the linearizable reads'.
	KVGetSerializable   = "kv-get-serializable"
	KVRangeSerializable = "kv-range-serializable"
	// KVList reads the whole prefix page by page (Limit keys a page), the
	// pages after the first at the first page's revision, as Kubernetes
	// lists: one operation whose result is the whole range at that
	// revision, with no limit.
	KVList = "kv-list"
)

func init() {
	known(kvWriteFacts, KVPut, KVDelete, KVTxn)
	known(readFacts, KVGet, KVRange, KVGetSerializable, KVRangeSerializable, KVList)
}

// isKVRead reports whether f is a kv get or range, of either consistency;
// the Serializable field, not the name, says which.
func isKVRead(f string) bool {
	return f == KVGet || f == KVRange || f == KVGetSerializable || f == KVRangeSerializable || f == KVList
}

func isKVOp(f string) bool {
	switch f {
	case KVGet, KVRange, KVPut, KVDelete, KVTxn, KVCompact, KVGetSerializable, KVRangeSerializable, KVList:
		return true
	}
	return false
}

// KV checks that the kv workload's operations are linearizable against a
// model of etcd's data: one global revision that every write bumps by one,
// and per key a value, create revision, mod revision and version;
// transactions compare them; deletes remove keys; compaction changes no
// data. Serializable reads and reads of past revisions are checked against
// states that existed (see serializableReads), in the same result.
//
// Because every write bumps the one revision, the history is checked as a
// whole, not key by key. The response revisions the clients saw cut the
// search: every ok operation is pinned to its revision, and an operation
// of unknown outcome (info) that wrote a value a read later returned is
// pinned to that value's mod revision and must precede the read. Any
// other info write may take effect only at a revision no known write
// holds (a gap) or never; see kvStep.
//
// Writes of the register workload in the same run are known and counted
// towards the revision. Operations of any other workload may bump the
// revision in ways this checker cannot tell; when there are any, revisions
// may jump (gaps are allowed) and the check says so in its summary.
//
// The check stops with an unknown verdict, never a valid one, when ctx is
// done or in.Timeout has passed. If the history is not linearizable,
// porcupine's view is written where in.Visualize says.
func KV(ctx context.Context, in *Input) (res Result) {
	ops, timeout, visualizationPath := in.Ops, in.Timeout, in.visualization("linearizability-kv.html")
	start := time.Now()
	parent := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res = Result{Checker: KVChecker}
	defer func() { res.Seconds = time.Since(start).Seconds() }()
	if why := nothingToCheck(ops, "kv", isKVOp); why != "" {
		res.Verdict, res.Summary = Unknown, why
		return res
	}
	h := in.kvHistory()
	verdict, info := h.check(ctx, false)
	switch verdict {
	case Valid:
		res.Verdict = Valid
		res.Summary = fmt.Sprintf("%s on %s up to revision %d are linearizable", plural(h.counts.checked, "operation"), plural(len(h.keys), "key"), h.maxRev)
		if h.counts.info > 0 {
			res.Summary += fmt.Sprintf(" (%d of unknown outcome, %d of them shown to have happened by a later read)", h.counts.info, h.counts.pinned)
		}
	case Invalid:
		res.Verdict = Invalid
		res.Summary = "the kv operations are not linearizable"
		// Search again, keeping what the visualization and the anomaly
		// need; a second search of a failing history is as long as the
		// first at most.
		vctx, cancel := context.WithCancel(parent)
		if timeout > 0 {
			vctx, cancel = context.WithTimeout(parent, timeout)
		}
		v2, info2 := h.check(vctx, true)
		cancel()
		if v2 == Invalid {
			info = info2
			res.Anomalies = append(res.Anomalies, h.anomaly(info))
			if visualizationPath != "" {
				if err := porcupine.VisualizePath(h.model(context.Background()), info, visualizationPath); err != nil {
					res.Summary += "; writing the linearizability visualization: " + err.Error()
				} else {
					res.Visualization = filepath.Base(visualizationPath)
				}
			}
		} else {
			res.Summary += " (no time was left to find the evidence)"
		}
	default:
		res.Verdict = Unknown
		res.Summary = fmt.Sprintf("%s: unknown (%s)", stopReason(parent, timeout), plural(h.counts.checked, "kv operation"))
	}
	if h.permissive {
		res.Summary += fmt.Sprintf("; %s of other workloads may change the revision, so revision gaps were allowed", plural(h.counts.foreign, "operation"))
	}
	if n, anomalies := kvLeases(ops); len(anomalies) > 0 {
		res.Verdict = Invalid
		res.Summary += fmt.Sprintf("; %d of %d values read carry a lease other than the one their put attached", len(anomalies), n)
		res.Anomalies = append(res.Anomalies, anomalies...)
	}
	// Serializable reads and reads of the past are checked here too, so
	// that the kv workload has one result.
	if sr, _ := in.serializable(); sr.Summary != noSerializableReads {
		res.Verdict = Worst(res.Verdict, sr.Verdict)
		res.Summary += "; serializable reads and reads of past revisions (checked against states that existed): " + sr.Summary
		res.Anomalies = append(res.Anomalies, sr.Anomalies...)
	}
	return res
}

// kvKind is what a porcupine operation does to the model.
type kvKind uint8

const (
	kindRead    kvKind = iota // get or range
	kindPut                   // put of one key
	kindDelete                // delete of one key
	kindTxn                   // compares, then, else
	kindCompact               // compaction: changes no data
	kindBump                  // another workload's write: bumps the revision only
)

// kvKey is one key's state; val 0 means the key does not exist. A
// revision of -1 is unknown (a write whose revision nobody saw, when
// revisions may jump).
type kvKey struct {
	val         int32
	create, mod int64
	ver         int64
}

// kvState is the model's state. Steps never change a state; they return a
// new one sharing what did not change.
type kvState struct {
	rev int64
	// done counts the operations of known outcome placed so far.
	done int
	keys []kvKey
}

type kvCmp struct {
	key    int
	target string
	op     string
	val    int32
	number int64
}

type kvTxnOp struct {
	f   string // get, put, delete
	key int
	val int32
	// results (ok only)
	kvs     []kvKV
	deleted int64
}

// kvKV is a key-value as a response reported it.
type kvKV struct {
	key              int
	val              int32
	create, mod, ver int64
}

// kvOp is a porcupine operation's input (and output: the same pointer).
type kvOp struct {
	op   *history.Op
	kind kvKind
	info bool // outcome unknown
	// pinned marks an info write that a later read proved happened, at
	// revision rev.
	pinned bool
	rev    int64 // response header revision (ok), or the pinned revision

	// read
	keys     []int // the keys in the range, in key order
	limit    int64
	keysOnly bool
	kvs      []kvKV
	count    int64
	more     bool

	// put, delete
	key      int
	val      int32
	prevKV   bool
	prev     *kvKV
	deleted  int64
	compacts int64

	// txn
	compares  []kvCmp
	then, els []kvTxnOp
	succeeded bool
	responses []kvTxnOp
}

type kvCounts struct{ checked, info, pinned, foreign, serializable int }

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
	initRev    int64
	permissive bool
	counts     kvCounts
}

func buildKV(ops []history.Op) *kvHistory {
	h := &kvHistory{known: map[int64]bool{}, initRev: 1}
	// Keys and values get small ids; the state is then a few integers per
	// key, cheap to copy, compare and hash.
	keyIdx := map[string]int{}
	addKey := func(k string) {
		if _, ok := keyIdx[k]; !ok {
			keyIdx[k] = -1
		}
	}
	valIdx := map[string]int32{"": 0}
	h.values = []string{""}
	val := func(v string) int32 {
		if id, ok := valIdx[v]; ok {
			return id
		}
		id := int32(len(h.values))
		valIdx[v] = id
		h.values = append(h.values, v)
		return id
	}
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
		case isRegisterOp(op.F):
			foreign = append(foreign, op)
		default:
			h.counts.foreign++
			h.permissive = true
		}
	}
	if end < math.MaxInt64 {
		end++
	}
	delete(keyIdx, "")
	for k := range keyIdx {
		h.keys = append(h.keys, k)
	}
	slices.Sort(h.keys)
	for i, k := range h.keys {
		keyIdx[k] = i
	}
	kkv := func(kv history.KV) kvKV {
		return kvKV{key: keyIdx[kv.Key], val: val(kv.Value), create: kv.CreateRevision, mod: kv.ModRevision, ver: kv.Version}
	}
	kkvs := func(in []history.KV) []kvKV {
		var out []kvKV
		for _, kv := range in {
			out = append(out, kkv(kv))
		}
		return out
	}

	// What reads saw: each value identifies the one write of it, and the
	// read's mod revision is that write's revision.
	type seen struct {
		mod int64
		by  int64 // earliest return of a read that saw it
	}
	observed := map[[2]string]seen{}
	observe := func(op *history.Op, kvs ...history.KV) {
		for _, kv := range kvs {
			if kv.Value == "" {
				continue
			}
			k := [2]string{kv.Key, kv.Value}
			if s, ok := observed[k]; !ok || op.Complete.Time < s.by {
				observed[k] = seen{mod: kv.ModRevision, by: op.Complete.Time}
			}
		}
	}
	for _, op := range kvOps {
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

	var pops []*kvOp
	for _, op := range kvOps {
		in, out := op.Invoke, op.Complete
		o := &kvOp{op: op, info: op.Type() != history.OK, rev: out.Revision}
		switch {
		case op.Type() == history.Fail:
			continue // it certainly did not happen
		case op.F == KVCompact && o.info:
			continue // it changes no data
		case isKVRead(op.F) && (o.info || out.Serializable || in.Serializable || in.AtRevision > 0):
			// A read of unknown outcome told nothing; a serializable one,
			// or one of a past revision, is SerializableReads'.
			if !o.info {
				h.counts.serializable++
			}
			continue
		}
		switch op.F {
		case KVGet, KVRange, KVGetSerializable, KVRangeSerializable, KVList:
			o.kind = kindRead
			if in.RangeEnd == "" {
				o.keys = []int{keyIdx[in.Key]}
			} else {
				for i, k := range h.keys {
					if k >= in.Key && k < in.RangeEnd {
						o.keys = append(o.keys, i)
					}
				}
			}
			o.limit, o.keysOnly = in.Limit, in.KeysOnly
			o.kvs, o.count, o.more = kkvs(out.KVs), out.Count, out.More
			if op.F == KVList {
				o.limit = 0 // the pages together
			}
		case KVPut:
			o.kind, o.key, o.val, o.prevKV = kindPut, keyIdx[in.Key], val(in.Value), in.PrevKV
			if out.Prev != nil {
				p := kkv(*out.Prev)
				o.prev = &p
			}
		case KVDelete:
			o.kind, o.key, o.prevKV, o.deleted = kindDelete, keyIdx[in.Key], in.PrevKV, out.Deleted
			if out.Prev != nil {
				p := kkv(*out.Prev)
				o.prev = &p
			}
		case KVCompact:
			o.kind, o.compacts = kindCompact, in.CompactRevision
		case KVTxn:
			o.kind, o.succeeded = kindTxn, out.Succeeded
			for _, c := range in.Compares {
				o.compares = append(o.compares, kvCmp{key: keyIdx[c.Key], target: c.Target, op: c.Op, val: val(c.Value), number: c.Number})
			}
			conv := func(ts []history.TxnOp) []kvTxnOp {
				var out []kvTxnOp
				for _, t := range ts {
					out = append(out, kvTxnOp{f: t.F, key: keyIdx[t.Key], val: val(t.Value), kvs: kkvs(t.KVs), deleted: t.Deleted})
				}
				return out
			}
			o.then, o.els, o.responses = conv(in.Then), conv(in.Else), conv(out.Responses)
		}
		// An info write whose value a read returned happened, at the
		// revision the read reported, before that read returned.
		ret := op.Complete.Time
		if o.info {
			ret = end
			var puts []history.TxnOp
			switch op.F {
			case KVPut:
				puts = []history.TxnOp{{F: "put", Key: in.Key, Value: in.Value}}
			case KVTxn:
				puts = in.Then
			}
			for _, p := range puts {
				if s, ok := observed[[2]string{p.Key, p.Value}]; ok && p.F == "put" {
					o.pinned, o.rev, o.succeeded = true, s.mod, true
					ret = max(op.Invoke.Time, s.by)
					break
				}
			}
		}
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
		h.counts.checked++
		if o.info {
			h.counts.info++
			if o.pinned {
				h.counts.pinned++
			}
		}
		pops = append(pops, o)
		h.ops = append(h.ops, porcupine.Operation{Input: o, Output: o, Call: op.Invoke.Time, Return: ret, Metadata: op})
	}
	// The register workload's writes bump the same revision.
	for _, op := range foreign {
		o := &kvOp{op: op, kind: kindBump, info: op.Type() != history.OK, rev: op.Complete.Revision}
		switch {
		case op.Type() == history.Fail, op.F == history.Read:
			continue
		case !o.info && op.F == history.CAS && !op.Complete.Succeeded:
			continue // a read in effect
		}
		ret := op.Complete.Time
		if o.info {
			ret = end
		} else {
			h.known[o.rev] = true
			h.maxRev = max(h.maxRev, o.rev)
			h.initRev = min(h.initRev, o.rev-1)
			h.mustPlace++
		}
		h.counts.checked++
		h.ops = append(h.ops, porcupine.Operation{Input: o, Output: o, Call: op.Invoke.Time, Return: ret, Metadata: op})
	}
	// Small client ids, one per process, for the visualization.
	procs := map[history.Process]int{}
	var ids []history.Process
	for _, op := range h.ops {
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
	for i := range h.ops {
		h.ops[i].ClientId = procs[h.ops[i].Metadata.(*history.Op).Process]
	}
	h.markQuiet(kvOps, keyIdx)
	if h.maxRev >= 0 && h.maxRev < 1<<30 {
		h.knownBits = make([]uint64, h.maxRev/64+1)
		for r := range h.known {
			if r >= 0 && r <= h.maxRev {
				h.knownBits[r/64] |= 1 << (r % 64)
			}
		}
	}
	return h
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

func (h *kvHistory) init() *kvState {
	return &kvState{rev: h.initRev, keys: make([]kvKey, len(h.keys))}
}

// step is the model: whether op can take effect in s, and the state after.
//
// An ok operation must see exactly its response revision: a read the
// current one, a write the next (with gaps allowed, any later one). A
// pinned info write behaves like an ok write at its known revision.
//
// Any other info operation may have taken effect at any time after its
// invocation, or never; it is given a return time after every other event.
// It takes effect where porcupine places it, but only where it writes
// and only at a revision no known write holds (a gap): anywhere else its
// effect would contradict a known revision, or be nothing at all. Effects
// of nothing, and never, are all placed at the end, after every operation
// whose outcome is known: there nothing can tell them apart. Allowing them
// anywhere else would let porcupine try each such operation at every step
// and double its search for each, without changing the verdict.
func (h *kvHistory) step(s *kvState, o *kvOp) (bool, *kvState) {
	if o.info && !o.pinned {
		return h.stepMaybe(s, o)
	}
	ok, next := h.stepKnown(s, o)
	if !ok {
		return false, s
	}
	n := *next
	n.done = s.done + 1
	return true, &n
}

func (h *kvHistory) stepMaybe(s *kvState, o *kvOp) (bool, *kvState) {
	if s.done == h.mustPlace {
		return true, s
	}
	g := s.rev + 1
	if g > h.maxRev || h.isKnown(g) {
		return false, s
	}
	var keys []kvKey
	wrote := o.kind == kindBump
	if o.kind != kindBump {
		_, keys, wrote = h.apply(s, o)
	}
	if !wrote {
		return false, s
	}
	for i := range keys {
		if keys[i] != s.keys[i] && h.quiet(i, g) {
			// A read saw this key unchanged across revision g.
			return false, s
		}
	}
	stamp := g
	if h.permissive {
		// The revision it took is unknown: another workload's writes may
		// have come first.
		stamp = -1
	}
	return true, &kvState{rev: g, done: s.done, keys: h.stamp(keys, s.keys, stamp)}
}

func (h *kvHistory) stepKnown(s *kvState, o *kvOp) (bool, *kvState) {
	switch o.kind {
	case kindRead:
		if !h.revOK(s, o.rev, false) || !h.readOK(s, o) {
			return false, s
		}
		return true, h.at(s, o.rev)
	case kindCompact:
		return o.compacts <= max(s.rev, o.rev), s
	case kindBump:
		if !h.revOK(s, o.rev, true) {
			return false, s
		}
		return true, &kvState{rev: h.next(s, o.rev), keys: s.keys}
	}
	// put, delete, txn
	ok, keys, wrote := h.apply(s, o)
	if !ok || !h.revOK(s, o.rev, wrote) || (o.pinned && !wrote) {
		return false, s
	}
	if !wrote {
		return true, h.at(s, o.rev)
	}
	rev := h.next(s, o.rev)
	return true, &kvState{rev: rev, keys: h.stamp(keys, s.keys, rev)}
}

// revOK checks a response revision against the state: a write must be the
// next revision, anything else the current one; with gaps allowed, any
// later revision will do.
func (h *kvHistory) revOK(s *kvState, rev int64, write bool) bool {
	want := s.rev
	if write {
		want++
	}
	if h.permissive {
		return rev >= want
	}
	return rev == want
}

// next is the revision after a write that reported rev.
func (h *kvHistory) next(s *kvState, rev int64) int64 {
	if h.permissive {
		return rev
	}
	return s.rev + 1
}

// at is s at the revision a read reported (only differs with gaps).
func (h *kvHistory) at(s *kvState, rev int64) *kvState {
	if !h.permissive || rev <= s.rev {
		return s
	}
	return &kvState{rev: rev, keys: s.keys}
}

// stamp fills in the revision of the keys a write changed: keys holds
// them with create/mod 0 meaning "this write" (a fresh copy, or nil when
// nothing changed).
func (h *kvHistory) stamp(keys, old []kvKey, rev int64) []kvKey {
	if keys == nil {
		return old
	}
	for i := range keys {
		k := &keys[i]
		if k.val == 0 {
			continue
		}
		if k.mod == 0 {
			k.mod = rev
		}
		if k.create == 0 {
			k.create = rev
		}
	}
	return keys
}

// apply runs a put, delete or txn on s. It returns whether the op's
// reported results fit s, the new keys (nil if nothing changed; written
// keys have create/mod 0, for stamp to fill in) and whether it wrote.
func (h *kvHistory) apply(s *kvState, o *kvOp) (bool, []kvKey, bool) {
	var keys []kvKey
	mut := func() []kvKey {
		if keys == nil {
			keys = slices.Clone(s.keys)
		}
		return keys
	}
	put := func(key int, val int32) {
		k := mut()
		old := s.keys[key]
		if old.val == 0 {
			k[key] = kvKey{val: val, ver: 1}
		} else {
			k[key] = kvKey{val: val, create: old.create, ver: old.ver + 1}
		}
	}
	del := func(key int) bool {
		if s.keys[key].val == 0 {
			return false
		}
		mut()[key] = kvKey{}
		return true
	}
	known := !o.info
	switch o.kind {
	case kindPut:
		if known && o.prevKV && !prevOK(s.keys, o.key, o.prev) {
			return false, nil, false
		}
		put(o.key, o.val)
		return true, keys, true
	case kindDelete:
		if known && o.prevKV && !prevOK(s.keys, o.key, o.prev) {
			return false, nil, false
		}
		wrote := del(o.key)
		if known && (o.deleted > 0) != wrote {
			return false, nil, false
		}
		return true, keys, wrote
	}
	// txn
	succeeded, decided := h.compare(s, o.compares)
	switch {
	case known || o.pinned:
		if decided && succeeded != o.succeeded {
			return false, nil, false
		}
		succeeded = o.succeeded
	case !decided:
		// An unknown revision cannot be compared (only when gaps are
		// allowed); take the branch that writes nothing.
		succeeded = false
	}
	branch := o.els
	if succeeded {
		branch = o.then
	}
	if known && len(o.responses) != len(branch) {
		return false, nil, false
	}
	wrote := false
	for i, t := range branch {
		switch t.f {
		case "get":
			if known && !kvsOK(s.keys, []int{t.key}, 0, false, o.responses[i].kvs) {
				return false, nil, false
			}
		case "put":
			put(t.key, t.val)
			wrote = true
		case "delete":
			d := del(t.key)
			if known && (o.responses[i].deleted > 0) != d {
				return false, nil, false
			}
			wrote = wrote || d
		}
	}
	return true, keys, wrote
}

// compare evaluates a txn's compares on s, as etcd does: a value compare
// on a missing key fails; other targets of a missing key are 0. decided is
// false when a compare needs a revision the model does not know.
func (h *kvHistory) compare(s *kvState, cs []kvCmp) (succeeded, decided bool) {
	for _, c := range cs {
		k := s.keys[c.key]
		var res int
		switch c.target {
		case "value":
			if k.val == 0 {
				return false, true
			}
			res = strings.Compare(h.values[k.val], h.values[c.val])
		case "version":
			res = cmp.Compare(k.ver, c.number)
		case "create_revision":
			if k.create < 0 {
				return false, false
			}
			res = cmp.Compare(k.create, c.number)
		default:
			if k.mod < 0 {
				return false, false
			}
			res = cmp.Compare(k.mod, c.number)
		}
		var ok bool
		switch c.op {
		case "=", "==":
			ok = res == 0
		case "!=":
			ok = res != 0
		case "<":
			ok = res < 0
		case ">":
			ok = res > 0
		}
		if !ok {
			return false, true
		}
	}
	return true, true
}

func prevOK(keys []kvKey, key int, prev *kvKV) bool {
	k := keys[key]
	if k.val == 0 {
		return prev == nil
	}
	return prev != nil && kvKVOK(k, key, *prev, false)
}

func kvKVOK(k kvKey, key int, got kvKV, keysOnly bool) bool {
	return got.key == key && (keysOnly || got.val == k.val) && got.ver == k.ver &&
		(k.mod < 0 || got.mod == k.mod) && (k.create < 0 || got.create == k.create)
}

// kvsOK checks a range result: the keys present in range, in order, cut
// at limit.
func kvsOK(keys []kvKey, in []int, limit int64, keysOnly bool, got []kvKV) bool {
	n := 0
	for _, i := range in {
		if keys[i].val == 0 {
			continue
		}
		if limit > 0 && int64(n) >= limit {
			break
		}
		if n >= len(got) || !kvKVOK(keys[i], i, got[n], keysOnly) {
			return false
		}
		n++
	}
	return n == len(got)
}

func (h *kvHistory) readOK(s *kvState, o *kvOp) bool {
	if !kvsOK(s.keys, o.keys, o.limit, o.keysOnly, o.kvs) {
		return false
	}
	count := int64(0)
	for _, i := range o.keys {
		if s.keys[i].val != 0 {
			count++
		}
	}
	return count == o.count && o.more == (o.limit > 0 && count > o.limit)
}

func (h *kvHistory) model(ctx context.Context) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return h.init() },
		Step: func(state, input, _ any) (bool, any) {
			return h.step(state.(*kvState), input.(*kvOp))
		},
		StepContext: func(_ context.Context, state, input, _ any) (bool, any) {
			if ctx.Err() != nil {
				return false, state
			}
			return h.step(state.(*kvState), input.(*kvOp))
		},
		Equal: func(a, b any) bool {
			x, y := a.(*kvState), b.(*kvState)
			return x == y || (x.rev == y.rev && x.done == y.done && slices.Equal(x.keys, y.keys))
		},
		Hash: func(state any) uint64 {
			s := state.(*kvState)
			hash := uint64(14695981039346656037)
			mix := func(v uint64) { hash = (hash ^ v) * 1099511628211 }
			mix(uint64(s.rev))
			mix(uint64(s.done))
			for _, k := range s.keys {
				mix(uint64(k.val))
				mix(uint64(k.mod))
				mix(uint64(k.ver))
			}
			return hash
		},
		DescribeOperation:         func(input, _ any) string { return h.describe(input.(*kvOp)) },
		DescribeState:             func(state any) string { return h.describeState(state.(*kvState)) },
		DescribeOperationMetadata: describeOpMetadata,
	}
}

// check runs porcupine on the whole history.
func (h *kvHistory) check(ctx context.Context, verbose bool) (Verdict, porcupine.LinearizationInfo) {
	var limit time.Duration
	if d, ok := ctx.Deadline(); ok {
		if limit = time.Until(d); limit <= 0 {
			return Unknown, porcupine.LinearizationInfo{}
		}
	}
	if ctx.Err() != nil {
		return Unknown, porcupine.LinearizationInfo{}
	}
	var res porcupine.CheckResult
	var info porcupine.LinearizationInfo
	if verbose {
		res, info = porcupine.CheckOperationsVerbose(h.model(ctx), h.ops, limit)
	} else {
		res = porcupine.CheckOperationsTimeout(h.model(ctx), h.ops, limit)
	}
	switch {
	case res == porcupine.Ok:
		return Valid, info
	case res == porcupine.Illegal && ctx.Err() == nil:
		return Invalid, info
	}
	return Unknown, info
}

// anomaly names the operation that cannot follow the longest linearizable
// prefix porcupine found, and the state that prefix leaves.
func (h *kvHistory) anomaly(info porcupine.LinearizationInfo) string {
	var longest []int
	if ps := info.PartialLinearizations(); len(ps) > 0 && len(ps[0]) > 0 {
		slices.SortFunc(ps[0], func(a, b []int) int {
			if len(a) != len(b) {
				return len(b) - len(a)
			}
			return slices.Compare(a, b)
		})
		longest = ps[0][0]
	}
	s := h.init()
	done := make([]bool, len(h.ops))
	for _, id := range longest {
		_, s = h.step(s, h.ops[id].Input.(*kvOp))
		done[id] = true
	}
	minReturn := int64(math.MaxInt64)
	for i, op := range h.ops {
		if !done[i] {
			minReturn = min(minReturn, op.Return)
		}
	}
	var stuck []porcupine.Operation
	for i, op := range h.ops {
		if !done[i] && op.Call <= minReturn {
			if ok, _ := h.step(s, op.Input.(*kvOp)); !ok {
				stuck = append(stuck, op)
			}
		}
	}
	prefix := fmt.Sprintf("the longest linearizable prefix (%d of %s) ends at %s",
		len(longest), plural(len(h.ops), "operation"), h.describeState(s))
	if len(stuck) == 0 {
		return "no order of the kv operations is linearizable; " + prefix
	}
	slices.SortFunc(stuck, func(a, b porcupine.Operation) int { return cmp.Compare(a.Return, b.Return) })
	o := stuck[0].Input.(*kvOp)
	msg := fmt.Sprintf("%s by process %d at %s cannot follow: %s", h.describe(o), o.op.Process, seconds(o.op.Invoke.Time), prefix)
	if len(stuck) > 1 {
		msg += fmt.Sprintf("; %s cannot follow it either", plural(len(stuck)-1, "other operation"))
	}
	return msg
}

func (h *kvHistory) describeKV(kv kvKV, keysOnly bool) string {
	v := ""
	if !keysOnly {
		v = fmt.Sprintf("=%q", h.values[kv.val])
	}
	return fmt.Sprintf("%s%s (create %d, mod %d, version %d)", h.keys[kv.key], v, kv.create, kv.mod, kv.ver)
}

func (h *kvHistory) describeKVs(kvs []kvKV, keysOnly bool) string {
	if len(kvs) == 0 {
		return "nothing"
	}
	var parts []string
	for _, kv := range kvs {
		parts = append(parts, h.describeKV(kv, keysOnly))
	}
	return strings.Join(parts, ", ")
}

func (h *kvHistory) describe(o *kvOp) string {
	op := o.op
	in := op.Invoke
	var s string
	switch o.kind {
	case kindRead:
		s = fmt.Sprintf("%s(%s", op.F, in.Key)
		if in.RangeEnd != "" {
			s += ".." + in.RangeEnd
		}
		if in.Limit > 0 {
			s += fmt.Sprintf(", limit %d", in.Limit)
		}
		if in.KeysOnly {
			s += ", keys only"
		}
		s += fmt.Sprintf(") → %s, count %d", h.describeKVs(o.kvs, o.keysOnly), o.count)
		if o.more {
			s += ", more"
		}
	case kindPut:
		s = fmt.Sprintf("kv-put(%s, %q)", in.Key, in.Value)
		if o.prevKV && !o.info {
			if o.prev == nil {
				s += " → prev none"
			} else {
				s += " → prev " + h.describeKV(*o.prev, false)
			}
		}
	case kindDelete:
		s = fmt.Sprintf("kv-delete(%s)", in.Key)
		if !o.info {
			s += fmt.Sprintf(" → deleted %d", o.deleted)
		}
	case kindCompact:
		s = fmt.Sprintf("kv-compact(%d)", o.compacts)
	case kindBump:
		s = fmt.Sprintf("%s(%s, %q) of another workload", op.F, in.Key, in.Value)
	case kindTxn:
		var cs, then, els []string
		for _, c := range in.Compares {
			if c.Target == "value" {
				cs = append(cs, fmt.Sprintf("value(%s) %s %q", c.Key, c.Op, c.Value))
			} else {
				cs = append(cs, fmt.Sprintf("%s(%s) %s %d", c.Target, c.Key, c.Op, c.Number))
			}
		}
		for _, t := range in.Then {
			then = append(then, fmt.Sprintf("%s %s %s", t.F, t.Key, t.Value))
		}
		for _, t := range in.Else {
			els = append(els, fmt.Sprintf("%s %s", t.F, t.Key))
		}
		s = fmt.Sprintf("kv-txn(if %s then %s else %s)", strings.Join(cs, " && "), strings.Join(then, "; "), strings.Join(els, "; "))
		if !o.info {
			s += map[bool]string{true: " → succeeded", false: " → failed"}[o.succeeded]
			for _, r := range o.responses {
				if r.f == "get" {
					s += "; get → " + h.describeKVs(r.kvs, false)
				}
			}
		}
	}
	switch {
	case o.pinned:
		s += fmt.Sprintf(" → ? (seen by a read: revision %d)", o.rev)
	case o.info:
		s += " → ?"
	default:
		s += fmt.Sprintf(" @%d", o.rev)
	}
	return s
}

func (h *kvHistory) describeState(s *kvState) string {
	var parts []string
	for i, k := range s.keys {
		if k.val != 0 {
			parts = append(parts, h.describeKV(kvKV{key: i, val: k.val, create: k.create, mod: k.mod, ver: k.ver}, false))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("revision %d, no keys", s.rev)
	}
	return fmt.Sprintf("revision %d: %s", s.rev, strings.Join(parts, ", "))
}
