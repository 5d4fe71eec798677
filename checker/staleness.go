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
	st := Staleness{Members: map[string]MemberStaleness{}}
	compaction := checkCompaction(ops, in.OtherCompactor)
	if len(reads) == 0 && compaction.past == 0 {
		res.Verdict = Valid
		res.Summary = noSerializableReads
		res.Seconds = time.Since(start).Seconds()
		return res, st
	}

	// The writes whose revision is known, per key in revision order.
	type write struct {
		rev int64
		val int32 // 0: a delete
	}
	byKey := make([][]write, len(h.keys))
	// Writes of unknown outcome that may fill a revision gap, by
	// invocation time, and the deletes among them per key.
	var maybe []int64
	mayDelete := make([]bool, len(h.keys))
	for _, p := range h.ops {
		o := p.Input.(*kvOp)
		if o.info && !o.pinned {
			maybe = append(maybe, o.op.Invoke.Time)
			if o.kind == kindDelete {
				mayDelete[o.key] = true
			}
			for _, t := range o.then {
				if t.f == "delete" {
					mayDelete[t.key] = true
				}
			}
			continue
		}
		if !writes(o) {
			continue
		}
		switch o.kind {
		case kindPut:
			byKey[o.key] = append(byKey[o.key], write{o.rev, o.val})
		case kindDelete:
			byKey[o.key] = append(byKey[o.key], write{o.rev, 0})
		case kindTxn:
			for i, t := range o.then {
				switch {
				case t.f == "put":
					byKey[t.key] = append(byKey[t.key], write{o.rev, t.val})
				case t.f == "delete" && (o.pinned || i < len(o.responses) && o.responses[i].deleted > 0):
					byKey[t.key] = append(byKey[t.key], write{o.rev, 0})
				}
			}
		}
	}
	for _, ws := range byKey {
		slices.SortFunc(ws, func(a, b write) int { return int(a.rev - b.rev) })
	}
	slices.Sort(maybe)
	var known []int64
	for r := range h.known {
		known = append(known, r)
	}
	slices.Sort(known)
	// gapsUpTo counts the revisions in (initRev, r] that no known write
	// produced.
	gapsUpTo := func(r int64) int64 {
		n := int64(sort.Search(len(known), func(i int) bool { return known[i] > r }))
		return max(0, r-h.initRev-n)
	}
	// lastWrite is the last known write to key at or below rev.
	lastWrite := func(key int, rev int64) (write, bool) {
		ws := byKey[key]
		i := sort.Search(len(ws), func(i int) bool { return ws[i].rev > rev })
		if i == 0 {
			return write{}, false
		}
		return ws[i-1], true
	}
	writeAt := func(key int, rev int64) (write, bool) {
		ws := byKey[key]
		i := sort.Search(len(ws), func(i int) bool { return ws[i].rev >= rev })
		if i < len(ws) && ws[i].rev == rev {
			return ws[i], true
		}
		return write{}, false
	}
	keyIdx := map[string]int{}
	for i, k := range h.keys {
		keyIdx[k] = i
	}
	valIdx := map[string]int32{}
	for i, v := range h.values {
		valIdx[v] = int32(i)
	}

	// When each revision was first known to exist: ok operations by
	// completion time, with the running maximum of their revisions.
	type seen struct{ t, rev int64 }
	var timeline []seen
	for i := range ops {
		op := &ops[i]
		if isKVOp(op.F) && op.Type() == history.OK && op.Complete.Revision > 0 {
			timeline = append(timeline, seen{op.Complete.Time, op.Complete.Revision})
		}
	}
	slices.SortFunc(timeline, func(a, b seen) int { return int(a.t - b.t) })
	for i := 1; i < len(timeline); i++ {
		timeline[i].rev = max(timeline[i].rev, timeline[i-1].rev)
	}
	newestBefore := func(t int64) int64 {
		i := sort.Search(len(timeline), func(i int) bool { return timeline[i].t >= t })
		if i == 0 {
			return h.initRev
		}
		return timeline[i-1].rev
	}
	firstSeen := func(rev int64) int64 {
		i := sort.Search(len(timeline), func(i int) bool { return timeline[i].rev >= rev })
		if i == len(timeline) {
			return -1
		}
		return timeline[i].t
	}

	var anomalies []string
	add := func(op *history.Op, format string, a ...any) {
		what := fmt.Sprintf("%s by process %d on %s at %s (revision %d)", op.F, op.Process, memberName(op), seconds(op.Invoke.Time), op.Complete.Revision)
		if op.Invoke.AtRevision > 0 {
			what = fmt.Sprintf("%s of revision %d by process %d at %s", op.F, op.Invoke.AtRevision, op.Process, seconds(op.Invoke.Time))
		}
		anomalies = append(anomalies, what+": "+fmt.Sprintf(format, a...))
	}
	var revs, millis []float64
	perRevs, perMillis := map[string][]float64{}, map[string][]float64{}
	for _, op := range reads {
		rev := op.Complete.Revision
		in := op.Invoke
		if in.AtRevision > 0 {
			// A read of the past is checked against the state it asked for.
			rev = in.AtRevision
		}
		// The revision must have existed.
		if !h.permissive {
			gaps := gapsUpTo(rev)
			fill := int64(sort.Search(len(maybe), func(i int) bool { return maybe[i] > op.Complete.Time }))
			if gaps > fill {
				add(op, "revision %d never existed: %d revisions up to it have no write that could have made them", rev, gaps-fill)
			}
		}
		// Each key in range must be as the state at rev had it.
		var inRange []int
		if in.RangeEnd == "" {
			inRange = []int{keyIdx[in.Key]}
		} else {
			for i, k := range h.keys {
				if k >= in.Key && k < in.RangeEnd {
					inRange = append(inRange, i)
				}
			}
		}
		got := map[int]history.KV{}
		for _, kv := range op.Complete.KVs {
			got[keyIdx[kv.Key]] = kv
		}
		truncated := in.Limit > 0 && op.Complete.More
		lastReturned := ""
		if n := len(op.Complete.KVs); n > 0 {
			lastReturned = op.Complete.KVs[n-1].Key
		}
		for _, k := range inRange {
			kv, present := got[k]
			last, wrote := lastWrite(k, rev)
			switch {
			case present && kv.ModRevision > rev:
				add(op, "%s has mod revision %d, after the read's own revision", kv.Key, kv.ModRevision)
			case present:
				w, ok := writeAt(k, kv.ModRevision)
				switch {
				case !ok && in.KeysOnly && !h.known[kv.ModRevision]:
					// Without its value the write cannot be named; one of
					// unknown outcome may have made it.
				case !ok:
					add(op, "%s=%q at mod revision %d: no write made it", kv.Key, kv.Value, kv.ModRevision)
				case w.val == 0:
					add(op, "read of a deleted key: %s was deleted at revision %d", kv.Key, kv.ModRevision)
				case !in.KeysOnly && w.val != valIdx[kv.Value]:
					add(op, "%s=%q at mod revision %d, but that revision wrote %q", kv.Key, kv.Value, kv.ModRevision, h.values[w.val])
				case wrote && last.rev > kv.ModRevision && last.val == 0:
					add(op, "read of a deleted key: %s (mod revision %d) was deleted at revision %d ≤ %d", kv.Key, kv.ModRevision, last.rev, rev)
				case wrote && last.rev > kv.ModRevision:
					add(op, "%s=%q (mod revision %d) was overwritten at revision %d ≤ %d: no such state existed", kv.Key, kv.Value, kv.ModRevision, last.rev, rev)
				}
			case truncated && h.keys[k] > lastReturned:
				// Beyond the page the limit cut.
			case wrote && last.val != 0:
				if !mayDelete[k] || gapsUpTo(rev)-gapsUpTo(last.rev) == 0 {
					add(op, "%s is missing, but it was written at revision %d ≤ %d and not deleted since", h.keys[k], last.rev, rev)
				}
			}
		}
		if in.AtRevision > 0 {
			continue
		}
		// How stale.
		st.Reads++
		behind := max(0, newestBefore(op.Invoke.Time)-rev)
		ms := 0.0
		if behind > 0 {
			st.Stale++
			if t := firstSeen(rev + 1); t >= 0 && t < op.Invoke.Time {
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

	// One member's answers never go back in time.
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
	for _, m := range members {
		rs := byMember[m]
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
				add(op, "member %s went back in time: it had answered at revision %d (process %d, done at %s)",
					m, top.Complete.Revision, top.Process, seconds(top.Complete.Time))
			}
		}
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
