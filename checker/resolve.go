package checker

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/faultline/faultline/history"
)

// CommitLog is what the cluster committed, as a watcher of the whole
// keyspace saw it: the changes, and the stretches of revisions it saw
// completely (where it could not see, say a compacted range, is a gap).
// The history itself already holds such a log (what every operation and
// watcher establishes, see factsOf); a CommitLog given in Input adds to it.
type CommitLog struct {
	Commits []Commit
	// Seen are the stretches of revisions whose every change is in Commits.
	Seen []RevSpan
}

// Commit is one change of one key at a revision: a put of Value, or a
// delete.
type Commit struct {
	Revision int64
	Key      string
	Value    string
	Delete   bool
}

// RevSpan is the revisions From through To.
type RevSpan struct{ From, To int64 }

// Resolved counts how the unknown outcomes of the kv and register writes
// were resolved from the commit log.
type Resolved struct {
	// Taken were seen in the log: they took effect at its revision.
	Taken int `json:"taken"`
	// NotTaken were never seen over a stretch the log saw completely: they
	// did not take effect.
	NotTaken int `json:"not_taken"`
	// Unknown are the rest, still of unknown outcome.
	Unknown int `json:"unknown"`
}

// any reports whether the log resolved anything.
func (r Resolved) any() bool { return r.Taken+r.NotTaken > 0 }

// String is the summary's words for the counts.
func (r Resolved) String() string {
	return fmt.Sprintf("unknown outcomes resolved from the commit log: %d took effect, %d did not, %d still unknown", r.Taken, r.NotTaken, r.Unknown)
}

// resolution is what the commit log says of each write of unknown outcome
// it resolved: taken at rev, within [call, ret] in time, or dropped.
type resolution struct {
	ops          map[*history.Op]resolvedOp
	kv, register Resolved
	// log is the commit log it was resolved from, for the kv history's
	// deletes (placeDeletes).
	log *commitIndex
}

type resolvedOp struct {
	drop      bool
	rev       int64
	call, ret int64
}

// of is what is known of op; ok is false when it stays unknown (also for a
// nil resolution: resolution switched off).
func (r *resolution) of(op *history.Op) (resolvedOp, bool) {
	if r == nil {
		return resolvedOp{}, false
	}
	ro, ok := r.ops[op]
	return ro, ok
}

// commitIndex is the commit log as the resolution reads it.
type commitIndex struct {
	at map[string]int64 // "key\x00value" -> the revision it was put at
	// read holds the values register reads returned: they carry no
	// revision, but a write of one of them is never dropped.
	read map[string]bool
	// deletes holds, per key, the revisions the log shows it deleted at
	// that no known operation wrote (owned): an info delete may have.
	deletes map[string][]int64
	owned   map[int64]bool
	seen    revisions
	last    int64
}

func (c *commitIndex) put(key, value string, rev int64) {
	if value == "" || rev <= 0 {
		return
	}
	k := key + "\x00" + value
	if _, dup := c.at[k]; !dup {
		c.at[k] = rev
	}
	c.last = max(c.last, rev)
}

// commitLog joins what the history establishes (the facts and complete
// revisions of the stream checks, over every operation) with extra, a log
// recorded beside the history.
func commitLog(ops []history.Op, extra *CommitLog) *commitIndex {
	st := newStreams(streamConfig{checker: WatchChecker, open: WatchOpen, recv: WatchRecv, finalRead: WatchRead, prefix: WatchPrefix})
	st.parse(ops)
	c := &commitIndex{at: map[string]int64{}, read: map[string]bool{}, deletes: map[string][]int64{}, owned: map[int64]bool{}}
	for _, r := range st.whole {
		c.owned[r] = true
	}
	del := func(key string, rev int64) {
		if !c.owned[rev] {
			c.deletes[key] = append(c.deletes[key], rev)
		}
	}
	for _, op := range ops {
		if op.F == history.Read && op.Type() == history.OK && op.Complete.Value != "" {
			c.read[op.Invoke.Key+"\x00"+op.Complete.Value] = true
		}
	}
	for _, f := range st.sorted {
		if f.ev.Type == "put" {
			c.put(f.key, f.ev.KV.Value, f.rev)
		} else {
			del(f.key, f.rev)
		}
		c.last = max(c.last, f.rev)
	}
	known := slices.Clone([]revRange(st.known))
	if extra != nil {
		for _, cm := range extra.Commits {
			if cm.Delete {
				del(cm.Key, cm.Revision)
			} else {
				c.put(cm.Key, cm.Value, cm.Revision)
			}
			c.last = max(c.last, cm.Revision)
		}
		for _, s := range extra.Seen {
			known = append(known, revRange{s.From, s.To})
			c.last = max(c.last, s.To)
		}
	}
	c.seen = mergeRevisions(known)
	return c
}

// resolve decides what it can of the kv, register and watch writes of
// unknown outcome. A write whose unique value the log shows took effect at
// that revision. One whose values the log never shows, over revisions it saw
// completely from the last revision acknowledged before the write was
// invoked to the last revision anything saw, did not: it cannot hold any
// of those revisions, and after them nothing can tell, provided every ok
// kv, register and watch write says its revision (one that does not could
// have seen the write later; then nothing is dropped). Either way the
// search loses choices it had, never gains one, so a resolved history that
// is linearizable was linearizable before: resolution cannot hide an
// anomaly, only find one sooner (or one in the log).
func resolve(ops []history.Op, extra *CommitLog) *resolution {
	log := commitLog(ops, extra)
	t := newRevTimes(ops)
	hi := max(log.last, t.maxRev)
	r := &resolution{ops: map[*history.Op]resolvedOp{}, log: log}
	for i := range ops {
		op := &ops[i]
		if op.Type() != history.Info {
			continue
		}
		// The watch workload's writes hold revisions of the kv search, so
		// they are counted with the kv workload's.
		counts := &r.kv
		if isRegisterOp(op.F) {
			counts = &r.register
		}
		var branches [][]history.TxnOp
		switch op.F {
		case KVPut, history.Write, history.CAS, WatchPut:
			branches = [][]history.TxnOp{{{F: "put", Key: op.Invoke.Key, Value: op.Invoke.Value}}}
		case KVTxn:
			branches = [][]history.TxnOp{op.Invoke.Then, op.Invoke.Else}
		case KVDelete, WatchDelete:
			if op.Invoke.RangeEnd != "" {
				counts.Unknown++
				continue
			}
			branches = [][]history.TxnOp{{{F: "delete", Key: op.Invoke.Key}}}
		case WatchTxn:
			var puts []history.TxnOp
			for _, kv := range op.Invoke.KVs {
				puts = append(puts, history.TxnOp{F: "put", Key: kv.Key, Value: kv.Value})
			}
			branches = [][]history.TxnOp{puts}
		default:
			continue
		}
		if rev, ok := log.taken(branches[0]); ok {
			call, ret := t.window(rev)
			call = max(call, op.Invoke.Time)
			if ret < call {
				// Committed before it was invoked, by the revisions: not
				// for this step to explain; the search judges it unknown.
				counts.Unknown++
				continue
			}
			r.ops[op] = resolvedOp{rev: rev, call: call, ret: ret}
			counts.Taken++
			continue
		}
		// Revision 1 is the empty store's: no write holds it.
		lo := max(t.before(op.Invoke.Time)+1, 2)
		if t.allRevised && log.seen.covers(lo, hi) && !slices.ContainsFunc(branches, func(b []history.TxnOp) bool { return log.mayHaveWritten(b, lo) }) {
			r.ops[op] = resolvedOp{drop: true}
			counts.NotTaken++
			continue
		}
		counts.Unknown++
	}
	return r
}

// taken is the revision at which the log shows one of branch's puts.
func (c *commitIndex) taken(branch []history.TxnOp) (int64, bool) {
	for _, t := range branch {
		if rev, ok := c.at[t.Key+"\x00"+t.Value]; ok && t.F == "put" && t.Value != "" {
			return rev, true
		}
	}
	return 0, false
}

// mayHaveWritten reports whether running branch, invoked when revision lo
// was still to come, could have changed something the log did not show:
// false when it writes nothing, puts a value the log never saw (so it did
// not run), or deletes only keys the log shows no delete of from lo on
// but those of known operations (so it deleted nothing, or did not run).
func (c *commitIndex) mayHaveWritten(branch []history.TxnOp, lo int64) bool {
	writes := false
	for _, t := range branch {
		if t.F == "delete" && !slices.ContainsFunc(c.deletes[t.Key], func(r int64) bool { return r >= lo }) {
			continue
		}
		switch t.F {
		case "put":
			if t.Value != "" && !c.read[t.Key+"\x00"+t.Value] {
				if _, ok := c.taken([]history.TxnOp{t}); !ok {
					return false
				}
			}
			writes = true
		case "delete":
			writes = true
		}
	}
	return writes
}

// revTimes ties revisions to real time through the linearizable kv and
// register operations and the watch writes that completed ok: one that
// returned revision r had r committed before it returned, and one invoked
// after revision r was committed returns r or later.
type revTimes struct {
	byRev   []revTime // by revision
	minRet  []int64   // minRet[i]: the earliest return of byRev[i:]
	maxCall []int64   // maxCall[i]: the latest invocation of byRev[:i+1]
	byRet   []revTime // by return time
	maxRevs []int64   // maxRevs[i]: the highest revision of byRet[:i+1]
	maxRev  int64
	// allRevised: every ok kv, register and watch write carries a revision.
	allRevised bool
}

type revTime struct{ rev, call, ret int64 }

// revised reports whether the operations f names say, when ok, the
// revision they were served at, as the linearizable operations of the kv
// and register workloads and the watch workload's writes do.
func revised(f string) bool { return isKVOp(f) || isRegisterOp(f) || isWatchWrite(f) }

func newRevTimes(ops []history.Op) *revTimes {
	t := &revTimes{allRevised: true}
	for _, op := range ops {
		c := op.Complete
		if c.Type == history.OK && c.Revision <= 0 && revised(op.F) {
			t.allRevised = false
		}
		if c.Type != history.OK || c.Revision <= 0 {
			continue
		}
		t.maxRev = max(t.maxRev, c.Revision)
		if !revised(op.F) || op.Invoke.Serializable || c.Serializable || op.Invoke.AtRevision > 0 {
			continue
		}
		t.byRev = append(t.byRev, revTime{c.Revision, op.Invoke.Time, c.Time})
	}
	t.byRet = slices.Clone(t.byRev)
	slices.SortFunc(t.byRev, func(a, b revTime) int { return int(sign(a.rev - b.rev)) })
	slices.SortFunc(t.byRet, func(a, b revTime) int { return int(sign(a.ret - b.ret)) })
	n := len(t.byRev)
	t.minRet, t.maxCall, t.maxRevs = make([]int64, n+1), make([]int64, n), make([]int64, n)
	t.minRet[n] = math.MaxInt64
	for i := n - 1; i >= 0; i-- {
		t.minRet[i] = min(t.minRet[i+1], t.byRev[i].ret)
	}
	for i, x := range t.byRev {
		t.maxCall[i] = x.call
		if i > 0 {
			t.maxCall[i] = max(t.maxCall[i], t.maxCall[i-1])
		}
	}
	for i, x := range t.byRet {
		t.maxRevs[i] = x.rev
		if i > 0 {
			t.maxRevs[i] = max(t.maxRevs[i], t.maxRevs[i-1])
		}
	}
	return t
}

func sign(x int64) int64 {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

// window is when revision rev was committed: after every invocation of an
// operation that returned an earlier revision, before the first return of
// one that returned rev or later (math.MaxInt64: no bound).
func (t *revTimes) window(rev int64) (call, ret int64) {
	i := sort.Search(len(t.byRev), func(i int) bool { return t.byRev[i].rev >= rev })
	if i > 0 {
		call = t.maxCall[i-1]
	}
	return call, t.minRet[i]
}

// before is the highest revision acknowledged before time at: a write
// invoked then cannot hold it or any below.
func (t *revTimes) before(at int64) int64 {
	i := sort.Search(len(t.byRet), func(i int) bool { return t.byRet[i].ret >= at })
	if i == 0 {
		return 0
	}
	return t.maxRevs[i-1]
}
