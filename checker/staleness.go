package checker

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// StalenessChecker is the name in Result.Checker.
const StalenessChecker = "serializable-reads"

const noSerializableReads = "no serializable reads"

// Staleness is how far behind the serializable reads were.
type Staleness struct {
	Reads int `json:"reads"`
	// Stale counts the reads behind the newest revision known to exist
	// when they were invoked.
	Stale int `json:"stale"`
	// Revisions and Millis are distributions over all serializable reads
	// of how many revisions, and how many milliseconds, each was behind.
	// Both are lower bounds: the newest revision known to exist when the
	// read was invoked is the highest any completed operation had shown.
	Revisions Distribution `json:"revisions_behind"`
	Millis    Distribution `json:"ms_behind"`
	// Members is the same per member that served the reads.
	Members map[string]MemberStaleness `json:"members,omitempty"`
}

// MemberStaleness is one member's share of Staleness.
type MemberStaleness struct {
	Reads     int          `json:"reads"`
	Stale     int          `json:"stale"`
	Revisions Distribution `json:"revisions_behind"`
	Millis    Distribution `json:"ms_behind"`
}

// Distribution summarises a set of numbers.
type Distribution struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Distribute summarises xs by percentiles, its mean and maximum.
func Distribute(xs []float64) Distribution {
	if len(xs) == 0 {
		return Distribution{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	q := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	var sum float64
	for _, x := range s {
		sum += x
	}
	return Distribution{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: s[len(s)-1], Mean: sum / float64(len(s))}
}

// serializableReads checks the kv workload's serializable reads, which
// linearizability does not cover: a member may answer from a state behind
// the cluster's, but
//
//   - the state must be one that really existed: every key a read returns
//     must hold the value the write at its mod revision wrote, no later
//     known write to it may be at or below the read's revision, and a key
//     it omits must have been deleted (or never written) by then;
//   - the read's revision must have existed: at or below the highest
//     revision known, with every unexplained revision below it fillable
//     by a write of unknown outcome;
//   - one member's answers never go back in time: a read that began after
//     another read on the same member ended has at least its revision.
//
// It measures how stale the reads were, in revisions and milliseconds.
func serializableReads(in *Input) (Result, Staleness) {
	start := time.Now()
	res := Result{Checker: StalenessChecker}
	ops, h := in.Ops, in.kvHistory()

	var reads []*history.Op
	for i := range ops {
		op := &ops[i]
		if isKVRead(op.F) && op.Type() == history.OK && (op.Invoke.Serializable || op.Complete.Serializable || op.Invoke.AtRevision > 0) {
			reads = append(reads, op)
		}
	}
	compaction := checkCompaction(ops, in.OtherCompactor)
	if len(reads) == 0 && compaction.past == 0 {
		res.Verdict = Valid
		res.Summary = noSerializableReads
		res.Seconds = time.Since(start).Seconds()
		return res, Staleness{Members: map[string]MemberStaleness{}}
	}

	var anomalies readAnomalies
	w := collectWrites(h)
	for _, op := range reads {
		rev := op.Complete.Revision
		if op.Invoke.AtRevision > 0 {
			// A read of the past is checked against the state it asked for.
			rev = op.Invoke.AtRevision
		}
		w.checkExisted(op, rev, &anomalies)
		w.checkState(op, rev, &anomalies)
	}
	st := measureStaleness(reads, newRevisionTimeline(ops, h.initRev))
	byMember, members := readsByMember(reads)
	for _, m := range members {
		checkMonotonic(m, byMember[m], &anomalies)
	}

	res.Summary = "no serializable reads"
	if st.Reads > 0 {
		res.Summary = fmt.Sprintf("%s on %s: %d stale; revisions behind p50 %g p90 %g p99 %g max %g; ms behind p50 %.1f p90 %.1f p99 %.1f max %.1f",
			plural(st.Reads, "serializable read"), plural(len(st.Members), "member"), st.Stale,
			st.Revisions.P50, st.Revisions.P90, st.Revisions.P99, st.Revisions.Max,
			st.Millis.P50, st.Millis.P90, st.Millis.P99, st.Millis.Max)
	}
	if compaction.past > 0 {
		res.Summary += fmt.Sprintf("; %s of a past revision, %d of them refused as compacted", plural(compaction.past, "read"), compaction.refused)
	}
	anomalies = append(anomalies, compaction.anomalies...)
	for _, m := range members {
		s := st.Members[m]
		res.Summary += fmt.Sprintf("; %s: %d of %d stale, p99 %g revisions / %.1f ms behind, max %g / %.1f ms", m, s.Stale, s.Reads, s.Revisions.P99, s.Millis.P99, s.Revisions.Max, s.Millis.Max)
	}
	if len(anomalies) > 0 {
		res.Verdict = Invalid
		n := fmt.Sprintf("%d anomalies", len(anomalies))
		if len(anomalies) == 1 {
			n = "1 anomaly"
		}
		res.Summary = n + "; " + res.Summary
		if len(anomalies) > 20 {
			anomalies = append(anomalies[:20], fmt.Sprintf("… and %d more", len(anomalies)-20))
		}
		res.Anomalies = anomalies
	} else {
		res.Verdict = Valid
	}
	res.Seconds = time.Since(start).Seconds()
	return res, st
}

// readAnomalies are what is wrong with the reads, each named by its read.
type readAnomalies []string

func (as *readAnomalies) add(op *history.Op, format string, a ...any) {
	what := fmt.Sprintf("%s by process %d on %s at %s (revision %d)", op.F, op.Process, memberName(op), seconds(op.Invoke.Time), op.Complete.Revision)
	if op.Invoke.AtRevision > 0 {
		what = fmt.Sprintf("%s of revision %d by process %d at %s", op.F, op.Invoke.AtRevision, op.Process, seconds(op.Invoke.Time))
	}
	*as = append(*as, what+": "+fmt.Sprintf(format, a...))
}

// keyWrite is a write to one key whose revision is known.
type keyWrite struct {
	rev int64
	val int32 // 0: a delete
}

// knownWrites is what the kv history tells of its writes, for checking
// that a read's state existed.
type knownWrites struct {
	h *kvHistory
	// byKey holds the writes whose revision is known, per key in
	// revision order.
	byKey [][]keyWrite
	// maybe holds the invocation times of the writes of unknown outcome
	// that may fill a revision gap; mayDelete marks the keys one of them
	// deletes.
	maybe     []int64
	mayDelete []bool
	// known holds the revisions known writes produced, in order.
	known  []int64
	keyIdx map[string]int
	valIdx map[string]int32
}

func collectWrites(h *kvHistory) *knownWrites {
	w := &knownWrites{h: h, byKey: make([][]keyWrite, len(h.keys)), mayDelete: make([]bool, len(h.keys))}
	for _, p := range h.ops {
		o := p.Input.(*kvOp)
		if o.info && !o.pinned {
			w.maybe = append(w.maybe, o.op.Invoke.Time)
			if o.kind == kindDelete {
				w.mayDelete[o.key] = true
			}
			for _, t := range o.then {
				if t.f == "delete" {
					w.mayDelete[t.key] = true
				}
			}
			continue
		}
		if !writes(o) {
			continue
		}
		switch o.kind {
		case kindPut:
			w.byKey[o.key] = append(w.byKey[o.key], keyWrite{o.rev, o.val})
		case kindDelete:
			w.byKey[o.key] = append(w.byKey[o.key], keyWrite{o.rev, 0})
		case kindTxn:
			for i, t := range o.then {
				switch {
				case t.f == "put":
					w.byKey[t.key] = append(w.byKey[t.key], keyWrite{o.rev, t.val})
				case t.f == "delete" && (o.pinned || i < len(o.responses) && o.responses[i].deleted > 0):
					w.byKey[t.key] = append(w.byKey[t.key], keyWrite{o.rev, 0})
				}
			}
		}
	}
	for _, ws := range w.byKey {
		slices.SortFunc(ws, func(a, b keyWrite) int { return int(a.rev - b.rev) })
	}
	slices.Sort(w.maybe)
	for r := range h.known {
		w.known = append(w.known, r)
	}
	slices.Sort(w.known)
	w.keyIdx = map[string]int{}
	for i, k := range h.keys {
		w.keyIdx[k] = i
	}
	w.valIdx = map[string]int32{}
	for i, v := range h.values {
		w.valIdx[v] = int32(i)
	}
	return w
}

// gapsUpTo counts the revisions in (initRev, r] that no known write
// produced.
func (w *knownWrites) gapsUpTo(r int64) int64 {
	n := int64(sort.Search(len(w.known), func(i int) bool { return w.known[i] > r }))
	return max(0, r-w.h.initRev-n)
}

// lastWrite is the last known write to key at or below rev.
func (w *knownWrites) lastWrite(key int, rev int64) (keyWrite, bool) {
	ws := w.byKey[key]
	i := sort.Search(len(ws), func(i int) bool { return ws[i].rev > rev })
	if i == 0 {
		return keyWrite{}, false
	}
	return ws[i-1], true
}

func (w *knownWrites) writeAt(key int, rev int64) (keyWrite, bool) {
	ws := w.byKey[key]
	i := sort.Search(len(ws), func(i int) bool { return ws[i].rev >= rev })
	if i < len(ws) && ws[i].rev == rev {
		return ws[i], true
	}
	return keyWrite{}, false
}

// checkExisted checks that the revision a read saw, rev, existed: every
// revision up to it that no known write produced must be fillable by a
// write of unknown outcome invoked before the read returned.
func (w *knownWrites) checkExisted(op *history.Op, rev int64, anomalies *readAnomalies) {
	if w.h.permissive {
		return
	}
	gaps := w.gapsUpTo(rev)
	fill := int64(sort.Search(len(w.maybe), func(i int) bool { return w.maybe[i] > op.Complete.Time }))
	if gaps > fill {
		anomalies.add(op, "revision %d never existed: %d revisions up to it have no write that could have made them", rev, gaps-fill)
	}
}

// checkState checks that each key in a read's range is as the state at
// rev had it.
func (w *knownWrites) checkState(op *history.Op, rev int64, anomalies *readAnomalies) {
	h, in := w.h, op.Invoke
	var inRange []int
	if in.RangeEnd == "" {
		inRange = []int{w.keyIdx[in.Key]}
	} else {
		for i, k := range h.keys {
			if k >= in.Key && k < in.RangeEnd {
				inRange = append(inRange, i)
			}
		}
	}
	got := map[int]history.KV{}
	for _, kv := range op.Complete.KVs {
		got[w.keyIdx[kv.Key]] = kv
	}
	truncated := in.Limit > 0 && op.Complete.More
	lastReturned := ""
	if n := len(op.Complete.KVs); n > 0 {
		lastReturned = op.Complete.KVs[n-1].Key
	}
	for _, k := range inRange {
		kv, present := got[k]
		last, wrote := w.lastWrite(k, rev)
		switch {
		case present && kv.ModRevision > rev:
			anomalies.add(op, "%s has mod revision %d, after the read's own revision", kv.Key, kv.ModRevision)
		case present:
			at, ok := w.writeAt(k, kv.ModRevision)
			switch {
			case !ok && in.KeysOnly && !h.known[kv.ModRevision]:
				// Without its value the write cannot be named; one of
				// unknown outcome may have made it.
			case !ok:
				anomalies.add(op, "%s=%q at mod revision %d: no write made it", kv.Key, kv.Value, kv.ModRevision)
			case at.val == 0:
				anomalies.add(op, "read of a deleted key: %s was deleted at revision %d", kv.Key, kv.ModRevision)
			case !in.KeysOnly && at.val != w.valIdx[kv.Value]:
				anomalies.add(op, "%s=%q at mod revision %d, but that revision wrote %q", kv.Key, kv.Value, kv.ModRevision, h.values[at.val])
			case wrote && last.rev > kv.ModRevision && last.val == 0:
				anomalies.add(op, "read of a deleted key: %s (mod revision %d) was deleted at revision %d ≤ %d", kv.Key, kv.ModRevision, last.rev, rev)
			case wrote && last.rev > kv.ModRevision:
				anomalies.add(op, "%s=%q (mod revision %d) was overwritten at revision %d ≤ %d: no such state existed", kv.Key, kv.Value, kv.ModRevision, last.rev, rev)
			}
		case truncated && h.keys[k] > lastReturned:
			// Beyond the page the limit cut.
		case wrote && last.val != 0:
			if !w.mayDelete[k] || w.gapsUpTo(rev)-w.gapsUpTo(last.rev) == 0 {
				anomalies.add(op, "%s is missing, but it was written at revision %d ≤ %d and not deleted since", h.keys[k], last.rev, rev)
			}
		}
	}
}

// revisionTimeline says when each revision was first known to exist: the
// ok operations by completion time, with the running maximum of their
// revisions.
type revisionTimeline struct {
	seen    []timedRevision
	initRev int64
}

type timedRevision struct{ t, rev int64 }

func newRevisionTimeline(ops []history.Op, initRev int64) revisionTimeline {
	tl := revisionTimeline{initRev: initRev}
	for i := range ops {
		op := &ops[i]
		if isKVOp(op.F) && op.Type() == history.OK && op.Complete.Revision > 0 {
			tl.seen = append(tl.seen, timedRevision{op.Complete.Time, op.Complete.Revision})
		}
	}
	slices.SortFunc(tl.seen, func(a, b timedRevision) int { return int(a.t - b.t) })
	for i := 1; i < len(tl.seen); i++ {
		tl.seen[i].rev = max(tl.seen[i].rev, tl.seen[i-1].rev)
	}
	return tl
}

// newestBefore is the newest revision known to exist before time t.
func (tl revisionTimeline) newestBefore(t int64) int64 {
	i := sort.Search(len(tl.seen), func(i int) bool { return tl.seen[i].t >= t })
	if i == 0 {
		return tl.initRev
	}
	return tl.seen[i-1].rev
}

// firstSeen is when revision rev or a later one was first known to exist,
// or -1 if never.
func (tl revisionTimeline) firstSeen(rev int64) int64 {
	i := sort.Search(len(tl.seen), func(i int) bool { return tl.seen[i].rev >= rev })
	if i == len(tl.seen) {
		return -1
	}
	return tl.seen[i].t
}

// measureStaleness is how far behind the newest revision known when they
// were invoked the serializable reads were, overall and per member; reads
// of a past revision asked to be behind and do not count.
func measureStaleness(reads []*history.Op, tl revisionTimeline) Staleness {
	st := Staleness{Members: map[string]MemberStaleness{}}
	var revs, millis []float64
	perRevs, perMillis := map[string][]float64{}, map[string][]float64{}
	for _, op := range reads {
		if op.Invoke.AtRevision > 0 {
			continue
		}
		rev := op.Complete.Revision
		st.Reads++
		behind := max(0, tl.newestBefore(op.Invoke.Time)-rev)
		ms := 0.0
		if behind > 0 {
			st.Stale++
			if t := tl.firstSeen(rev + 1); t >= 0 && t < op.Invoke.Time {
				ms = float64(op.Invoke.Time-t) / float64(time.Millisecond)
			}
		}
		m := memberName(op)
		revs, millis = append(revs, float64(behind)), append(millis, ms)
		perRevs[m], perMillis[m] = append(perRevs[m], float64(behind)), append(perMillis[m], ms)
		ms2 := st.Members[m]
		ms2.Reads++
		if behind > 0 {
			ms2.Stale++
		}
		st.Members[m] = ms2
	}
	st.Revisions, st.Millis = Distribute(revs), Distribute(millis)
	for m, s := range st.Members {
		s.Revisions, s.Millis = Distribute(perRevs[m]), Distribute(perMillis[m])
		st.Members[m] = s
	}
	return st
}

// readsByMember groups the reads of the current state by the member that
// served them, where it is known, and names those members in order.
func readsByMember(reads []*history.Op) (map[string][]*history.Op, []string) {
	byMember := map[string][]*history.Op{}
	for _, op := range reads {
		if op.Complete.Member != "" && op.Invoke.AtRevision == 0 {
			byMember[op.Complete.Member] = append(byMember[op.Complete.Member], op)
		}
	}
	members := make([]string, 0, len(byMember))
	for m := range byMember {
		members = append(members, m)
	}
	slices.Sort(members)
	return byMember, members
}

// checkMonotonic checks that member m's answers, rs, never go back in time:
// a read that began after another ended has at least its revision.
func checkMonotonic(m string, rs []*history.Op, anomalies *readAnomalies) {
	byEnd := slices.Clone(rs)
	slices.SortFunc(byEnd, func(a, b *history.Op) int { return int(a.Complete.Time - b.Complete.Time) })
	slices.SortFunc(rs, func(a, b *history.Op) int { return int(a.Invoke.Time - b.Invoke.Time) })
	var top *history.Op
	j := 0
	for _, op := range rs {
		for ; j < len(byEnd) && byEnd[j].Complete.Time < op.Invoke.Time; j++ {
			if top == nil || byEnd[j].Complete.Revision > top.Complete.Revision {
				top = byEnd[j]
			}
		}
		if top != nil && op.Complete.Revision < top.Complete.Revision {
			anomalies.add(op, "member %s went back in time: it had answered at revision %d (process %d, done at %s)",
				m, top.Complete.Revision, top.Process, seconds(top.Complete.Time))
		}
	}
}

func memberName(op *history.Op) string {
	if op.Complete.Member == "" {
		return "an unknown member"
	}
	return op.Complete.Member
}

type compactionCheck struct {
	past, refused int
	anomalies     []string
}

// checkCompaction checks reads of past revisions against the compactions:
// a read of a revision below a compaction that had completed before it
// began must be refused (etcd's "required revision has been compacted"),
// and a read refused so must ask for a revision below a compaction begun
// before it ended (unless something else compacts too).
func checkCompaction(ops []history.Op, otherCompactor bool) compactionCheck {
	var c compactionCheck
	type compaction struct {
		rev         int64
		begun, done int64 // done is -1 while unknown
	}
	var cs []compaction
	for _, op := range ops {
		if op.F != KVCompact || op.Type() == history.Fail {
			continue
		}
		done := int64(-1)
		if op.Type() == history.OK {
			done = op.Complete.Time
		}
		cs = append(cs, compaction{op.Invoke.CompactRevision, op.Invoke.Time, done})
	}
	for i := range ops {
		op := &ops[i]
		r := op.Invoke.AtRevision
		if !isKVRead(op.F) || r == 0 {
			continue
		}
		switch {
		case op.Type() == history.OK:
			c.past++
			for _, k := range cs {
				if k.done >= 0 && k.done < op.Invoke.Time && r < k.rev {
					c.anomalies = append(c.anomalies, fmt.Sprintf("%s of revision %d by process %d at %s returned data, but the compaction at revision %d had completed at %s",
						op.F, r, op.Process, seconds(op.Invoke.Time), k.rev, seconds(k.done)))
					break
				}
			}
		case op.Type() == history.Fail && strings.Contains(op.Complete.Error, "compacted"):
			c.past++
			c.refused++
			if !otherCompactor && !slices.ContainsFunc(cs, func(k compaction) bool { return k.begun < op.Complete.Time && r < k.rev }) {
				c.anomalies = append(c.anomalies, fmt.Sprintf("%s of revision %d by process %d at %s was refused as compacted, but no compaction above that revision had begun",
					op.F, r, op.Process, seconds(op.Invoke.Time)))
			}
		}
	}
	return c
}
