package checker

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/history"
)

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

func (h *kvHistory) init() *kvState {
	if h.start != nil {
		return h.start
	}
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

// check runs porcupine on h's operations, as one.
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
