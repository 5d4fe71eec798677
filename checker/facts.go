package checker

import (
	"cmp"
	"slices"
	"sort"

	"github.com/faultline/faultline/history"
)

// factsOf says, per operation name, what an operation establishes about
// the keyspace for the stream checks: the events it made or saw, the unique
// values it wrote, and the revisions it alone wrote. A watcher of the whole
// keyspace sees every workload's keys, so a write of one workload is as
// much evidence about its watch as a write of the watch workload. Each
// workload's checker file adds its own operations (see known), so a new
// workload's writes become evidence without this file changing.
var factsOf = map[string]func(op *history.Op, st *streams){}

// known says that operations named fs establish what facts records. It is
// called from the init of the checker file that gives those names meaning.
func known(facts func(op *history.Op, st *streams), fs ...string) {
	for _, f := range fs {
		if _, dup := factsOf[f]; dup {
			panic("checker: facts of operation " + f + " declared twice")
		}
		factsOf[f] = facts
	}
}

// opFacts hands the stream checks what op establishes, if anything.
func opFacts(op *history.Op, st *streams) {
	if facts := factsOf[op.F]; facts != nil {
		facts(op, st)
	}
}

// plainPutFacts records a put that took effect when it completed ok.
func plainPutFacts(op *history.Op, st *streams) {
	putFacts(op, st, op.Complete.Type == history.OK)
}

// readFacts records what a read returned: each key-value is a put at its
// mod_revision, with every field known. A keys-only read knows no value.
func readFacts(op *history.Op, st *streams) {
	if op.Complete.Type != history.OK || op.Invoke.KeysOnly {
		return
	}
	src := opSource{op, describeWriteOp}
	for _, kv := range op.Complete.KVs {
		st.addFact(fact{rev: kv.ModRevision, key: kv.Key, ev: history.WatchEvent{Type: "put", KV: kv}, source: src, full: true})
	}
}

// putFacts records a plain put of the invocation's key and value; wrote
// says it took effect at the completion's revision.
func putFacts(op *history.Op, st *streams, wrote bool) {
	inv, c := op.Invoke, op.Complete
	typ := c.Type
	if typ == history.OK && !wrote {
		typ = history.Fail // a compare that failed: nothing was written
	}
	w := valueWrite{key: inv.Key, typ: typ, op: op, describe: describeWriteOp, alone: true}
	if wrote {
		w.rev = c.Revision
		st.addPut(op, inv.Key, inv.Value, c.Revision)
		st.wholly(c.Revision)
	}
	st.addValue(inv.Value, w)
}

// kvWriteFacts records the kv workload's puts, deletes and transactions,
// with the prev_kv they returned.
func kvWriteFacts(op *history.Op, st *streams) {
	inv, c := op.Invoke, op.Complete
	src := opSource{op, describeWriteOp}
	if c.Prev != nil {
		st.addFact(fact{rev: c.Prev.ModRevision, key: c.Prev.Key, ev: history.WatchEvent{Type: "put", KV: *c.Prev}, source: src, full: true})
	}
	switch op.F {
	case KVPut:
		putFacts(op, st, c.Type == history.OK)
	case KVDelete:
		if c.Type == history.OK && c.Deleted > 0 && inv.RangeEnd == "" {
			st.addDelete(op, inv.Key, c.Revision)
			st.wholly(c.Revision)
		}
	case KVTxn:
		txnFacts(op, st)
	}
}

// txnFacts records a transaction's writes. Only the branch that ran wrote;
// the values of the other branch were never written. A transaction whose
// outcome is unknown wrote nothing the checker can place, but its values
// may still turn up.
func txnFacts(op *history.Op, st *streams) {
	inv, c := op.Invoke, op.Complete
	ran, other := inv.Then, inv.Else
	if c.Type == history.OK && !c.Succeeded {
		ran, other = other, ran
	}
	src := opSource{op, describeWriteOp}
	wrote := false
	for i, t := range ran {
		switch t.F {
		case "put":
			w := valueWrite{key: t.Key, typ: c.Type, op: op, describe: describeWriteOp}
			if c.Type == history.OK {
				w.rev = c.Revision
				st.addPut(op, t.Key, t.Value, c.Revision)
				wrote = true
			}
			st.addValue(t.Value, w)
		case "delete":
			if c.Type == history.OK && i < len(c.Responses) && c.Responses[i].Deleted > 0 {
				st.addDelete(op, t.Key, c.Revision)
				wrote = true
			}
		case "get":
			if c.Type == history.OK && i < len(c.Responses) {
				for _, kv := range c.Responses[i].KVs {
					st.addFact(fact{rev: kv.ModRevision, key: kv.Key, ev: history.WatchEvent{Type: "put", KV: kv}, source: src, full: true})
				}
			}
		}
	}
	if c.Type == history.OK {
		for _, t := range other {
			if t.F == "put" {
				st.addValue(t.Value, valueWrite{key: t.Key, typ: history.Fail, op: op, describe: describeWriteOp})
			}
		}
		if wrote {
			st.wholly(c.Revision)
		}
	}
}

// addPut records that op put value to key at rev.
func (st *streams) addPut(op *history.Op, key, value string, rev int64) {
	st.addFact(fact{rev: rev, key: key, ev: history.WatchEvent{Type: "put", KV: history.KV{Key: key, Value: value, ModRevision: rev}}, source: opSource{op, describeWriteOp}})
}

// addDelete records that op deleted key at rev.
func (st *streams) addDelete(op *history.Op, key string, rev int64) {
	st.addFact(fact{rev: rev, key: key, ev: history.WatchEvent{Type: "delete", KV: history.KV{Key: key, ModRevision: rev}}, source: opSource{op, describeWriteOp}})
}

// addValue records the write of a unique value.
func (st *streams) addValue(v string, w valueWrite) {
	if v != "" {
		st.values[v] = w
	}
}

// wholly records that every change revision rev made is among the facts:
// one operation wrote it, and the checker knows all it wrote.
func (st *streams) wholly(rev int64) {
	if rev > 0 {
		st.whole = append(st.whole, rev)
	}
}

// resolveUnknownPuts places the plain puts of unknown outcome whose value
// turned up: each took effect at the revision it was seen at, and changed
// nothing else there.
func (st *streams) resolveUnknownPuts() {
	for _, f := range st.sorted {
		if f.ev.Type != "put" {
			continue
		}
		if w, ok := st.values[f.ev.KV.Value]; ok && w.alone && w.typ == history.Info && w.key == f.key {
			st.wholly(f.rev)
		}
	}
}

// revRange is the revisions lo through hi.
type revRange struct{ lo, hi int64 }

// revisions is a set of revisions as sorted, disjoint ranges.
type revisions []revRange

// mergeRevisions turns ranges in any order into a revisions set.
func mergeRevisions(in []revRange) revisions {
	slices.SortFunc(in, func(a, b revRange) int { return cmp.Compare(a.lo, b.lo) })
	var out revisions
	for _, r := range in {
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// covers reports whether every revision from lo through hi is in the set.
func (rs revisions) covers(lo, hi int64) bool {
	if lo > hi {
		return true
	}
	i := sort.Search(len(rs), func(i int) bool { return rs[i].hi >= lo })
	return i < len(rs) && rs[i].lo <= lo && rs[i].hi >= hi
}
