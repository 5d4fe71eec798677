// Package mvcc is kvnode's multi-version key-value store. It keeps every
// revision of every key in memory, numbered exactly as etcd numbers them: one
// global revision that starts at 1 and grows by one per write transaction,
// with create_revision, mod_revision and version per key.
//
// The store is not safe for concurrent use on its own; the server serialises
// writes through the Raft apply loop and guards reads with a RWMutex.
package mvcc

import (
	"bytes"
	"errors"
	"sort"

	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

var (
	// ErrCompacted is returned for reads below the compaction revision.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev is returned for reads above the current revision.
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
)

// version is one state of a key: a put (kv set) or a deletion (tombstone).
type version struct {
	main, sub int64
	kv        *mvccpb.KeyValue // nil for a tombstone
}

// history holds all retained versions of one key, oldest first. A history
// in the tree is never modified: a change inserts a new one, so a Clone of
// the tree stays a consistent picture while the store moves on.
type history struct {
	key      string
	versions []version
}

// with returns a new history with v appended. The new slice may share the
// old one's array, but only beyond the old length, which no reader of the
// old history looks at.
func (h *history) with(v version) *history {
	return &history{key: h.key, versions: append(h.versions, v)}
}

func lessHistory(a, b *history) bool { return a.key < b.key }

// Store is an in-memory MVCC key-value store.
type Store struct {
	tree       *btree.BTreeG[*history]
	rev        int64
	compactRev int64
	// events lists every change after compactRev in revision order, so that
	// watchers can replay history without scanning every key.
	events []*mvccpb.Event
}

// New returns an empty store at revision 1, which is where etcd starts.
func New() *Store {
	return &Store{tree: btree.NewG(32, lessHistory), rev: 1}
}

// Rev is the current revision.
func (s *Store) Rev() int64 { return s.rev }

// Clone returns a read-only copy of the store in O(1); the copy may be read
// (for example encoded) while the original keeps changing. Cloning itself
// must not run concurrently with writes.
func (s *Store) Clone() *Store {
	return &Store{tree: s.tree.Clone(), rev: s.rev, compactRev: s.compactRev}
}

// CompactRev is the revision of the last compaction (0 if none).
func (s *Store) CompactRev() int64 { return s.compactRev }

// KeyCount is the number of live keys at the current revision.
func (s *Store) KeyCount() int {
	n := 0
	s.tree.Ascend(func(h *history) bool {
		if h.versions[len(h.versions)-1].kv != nil {
			n++
		}
		return true
	})
	return n
}

// at returns the key's value at revision rev, or nil if it did not exist then.
func (h *history) at(rev int64) *mvccpb.KeyValue {
	i := sort.Search(len(h.versions), func(i int) bool { return h.versions[i].main > rev })
	if i == 0 {
		return nil
	}
	return h.versions[i-1].kv
}

// latest is the key's current value, or nil.
func (h *history) latest() *mvccpb.KeyValue {
	return h.versions[len(h.versions)-1].kv
}

// RangeOptions narrow a Range.
type RangeOptions struct {
	Rev   int64 // 0 means the current revision
	Limit int64 // 0 means no limit
	// CountOnly skips building the result slice.
	CountOnly bool
}

// RangeResult is what Range found.
type RangeResult struct {
	KVs   []*mvccpb.KeyValue
	Count int
	Rev   int64 // the store's current revision
}

// checkRev resolves rev (0 = current) and checks it against compaction.
func (s *Store) checkRev(rev int64) (int64, error) {
	if rev <= 0 {
		return s.rev, nil
	}
	if rev > s.rev {
		return 0, ErrFutureRev
	}
	if rev < s.compactRev {
		return 0, ErrCompacted
	}
	return rev, nil
}

// each calls fn for every key in [key, end) in key order, following etcd's
// conventions: an empty end means the single key, end "\x00" means every key
// from key on.
func (s *Store) each(key, end []byte, fn func(h *history) bool) {
	if len(end) == 0 {
		if h, ok := s.tree.Get(&history{key: string(key)}); ok {
			fn(h)
		}
		return
	}
	from := &history{key: string(key)}
	if len(end) == 1 && end[0] == 0 {
		s.tree.AscendGreaterOrEqual(from, fn)
		return
	}
	if bytes.Compare(key, end) >= 0 {
		return
	}
	s.tree.AscendRange(from, &history{key: string(end)}, fn)
}

// Range reads keys in [key, end) at opts.Rev.
func (s *Store) Range(key, end []byte, opts RangeOptions) (RangeResult, error) {
	return s.rangeAt(key, end, opts, s.rev)
}

func (s *Store) rangeAt(key, end []byte, opts RangeOptions, cur int64) (RangeResult, error) {
	res := RangeResult{Rev: s.rev}
	rev := opts.Rev
	if rev <= 0 {
		rev = cur
	} else {
		if rev > cur {
			return res, ErrFutureRev
		}
		if rev < s.compactRev {
			return res, ErrCompacted
		}
	}
	s.each(key, end, func(h *history) bool {
		kv := h.at(rev)
		if kv == nil {
			return true
		}
		res.Count++
		if !opts.CountOnly && (opts.Limit <= 0 || int64(len(res.KVs)) < opts.Limit) {
			res.KVs = append(res.KVs, kv)
		}
		return true
	})
	return res, nil
}

// Txn is a write transaction: every change in it shares one main revision.
// Reads inside it see its own earlier writes, as in etcd.
type Txn struct {
	s       *Store
	sub     int64
	changed bool
	events  []*mvccpb.Event
}

// Write starts a write transaction. End must be called to publish it.
func (s *Store) Write() *Txn { return &Txn{s: s} }

func (t *Txn) rev() int64 { return t.s.rev + 1 }

// Rev is the revision the transaction's writes get.
func (t *Txn) Rev() int64 { return t.rev() }

// ReadRev is the revision reads inside the transaction observe: the
// transaction's own revision once it has written something.
func (t *Txn) ReadRev() int64 { return t.readRev() }

func (t *Txn) readRev() int64 {
	if t.changed {
		return t.rev()
	}
	return t.s.rev
}

// Range reads inside the transaction.
func (t *Txn) Range(key, end []byte, opts RangeOptions) (RangeResult, error) {
	res, err := t.s.rangeAt(key, end, opts, t.readRev())
	res.Rev = t.readRev()
	return res, err
}

// Get returns the key's current value inside the transaction, or nil.
func (t *Txn) Get(key []byte) *mvccpb.KeyValue {
	h, ok := t.s.tree.Get(&history{key: string(key)})
	if !ok {
		return nil
	}
	return h.at(t.readRev())
}

// Put writes key=value with lease and returns the previous value (or nil).
func (t *Txn) Put(key, value []byte, lease int64) (prev *mvccpb.KeyValue) {
	rev := t.rev()
	h, ok := t.s.tree.Get(&history{key: string(key)})
	if !ok {
		h = &history{key: string(key)}
	}
	kv := &mvccpb.KeyValue{
		Key:            []byte(h.key),
		Value:          append([]byte(nil), value...),
		CreateRevision: rev,
		ModRevision:    rev,
		Version:        1,
		Lease:          lease,
	}
	if len(h.versions) > 0 {
		prev = h.latest()
		if prev != nil {
			kv.CreateRevision = prev.CreateRevision
			kv.Version = prev.Version + 1
		}
	}
	t.s.tree.ReplaceOrInsert(h.with(version{main: rev, sub: t.sub, kv: kv}))
	t.sub++
	t.changed = true
	t.events = append(t.events, &mvccpb.Event{Type: mvccpb.PUT, Kv: kv})
	return prev
}

// DeleteRange deletes keys in [key, end) and returns the deleted values.
func (t *Txn) DeleteRange(key, end []byte) []*mvccpb.KeyValue {
	var hs []*history
	t.s.each(key, end, func(h *history) bool {
		if h.latest() != nil {
			hs = append(hs, h)
		}
		return true
	})
	rev := t.rev()
	var deleted []*mvccpb.KeyValue
	for _, h := range hs {
		prev := h.latest()
		deleted = append(deleted, prev)
		t.s.tree.ReplaceOrInsert(h.with(version{main: rev, sub: t.sub}))
		t.sub++
		t.changed = true
		t.events = append(t.events, &mvccpb.Event{
			Type: mvccpb.DELETE,
			Kv:   &mvccpb.KeyValue{Key: []byte(h.key), ModRevision: rev},
		})
	}
	return deleted
}

// End publishes the transaction and returns its events (nil if it wrote
// nothing, in which case the revision does not move).
func (t *Txn) End() []*mvccpb.Event {
	if !t.changed {
		return nil
	}
	t.s.rev++
	t.s.events = append(t.s.events, t.events...)
	return t.events
}

// Compact discards versions that no read at or above rev can observe.
func (s *Store) Compact(rev int64) error {
	if rev <= s.compactRev {
		return ErrCompacted
	}
	if rev > s.rev {
		return ErrFutureRev
	}
	var changed []*history
	s.tree.Ascend(func(h *history) bool {
		// Keep the newest version at or below rev (unless it is a tombstone)
		// and everything after it.
		i := sort.Search(len(h.versions), func(i int) bool { return h.versions[i].main > rev })
		keep := i - 1
		if keep >= 0 && h.versions[keep].kv == nil {
			keep++
		}
		if keep > 0 {
			changed = append(changed, &history{key: h.key, versions: append([]version(nil), h.versions[keep:]...)})
		}
		return true
	})
	for _, h := range changed {
		if len(h.versions) == 0 {
			s.tree.Delete(h)
		} else {
			s.tree.ReplaceOrInsert(h)
		}
	}
	i := sort.Search(len(s.events), func(i int) bool { return s.events[i].Kv.ModRevision >= rev })
	s.events = append([]*mvccpb.Event(nil), s.events[i:]...)
	s.compactRev = rev
	return nil
}

// EventsSince returns the retained events with revision >= rev, or
// ErrCompacted if some of them have been discarded. As in etcd, a watch may
// start at the compaction revision itself.
func (s *Store) EventsSince(rev int64) ([]*mvccpb.Event, error) {
	if rev < s.compactRev {
		return nil, ErrCompacted
	}
	i := sort.Search(len(s.events), func(i int) bool { return s.events[i].Kv.ModRevision >= rev })
	return s.events[i:], nil
}

// PrevKV is the value key had just before revision rev, or nil.
func (s *Store) PrevKV(key []byte, rev int64) *mvccpb.KeyValue {
	h, ok := s.tree.Get(&history{key: string(key)})
	if !ok {
		return nil
	}
	return h.at(rev - 1)
}
