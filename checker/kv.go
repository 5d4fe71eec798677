package checker

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"
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
// whole, not key by key; a long one is cut at revisions where the state is
// known and nothing is in flight, and the pieces are searched in parallel
// (see segments). The response revisions the clients saw cut the
// search: every ok operation is pinned to its revision, and an operation
// of unknown outcome (info) that wrote a value a read later returned is
// pinned to that value's mod revision and must precede the read. Any
// other info write may take effect only at a revision no known write
// holds (a gap) or never; see (*kvHistory).step in kvmodel.go.
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
	ctx, cancel := in.search(ctx)
	defer cancel()
	res = Result{Checker: KVChecker}
	defer func() { res.Seconds = time.Since(start).Seconds() }()
	if why := nothingToCheck(ops, "kv", isKVOp); why != "" {
		res.Verdict, res.Summary = Unknown, why
		return res
	}
	h := in.kvHistory()
	verdict, failed := h.checkSegments(ctx)
	switch verdict {
	case Valid:
		res.Verdict = Valid
		res.Summary = fmt.Sprintf("%s on %s up to revision %d are linearizable", plural(h.counts.checked, "operation"), plural(len(h.keys), "key"), h.maxRev)
		if h.counts.info > 0 {
			res.Summary += fmt.Sprintf(" (%d of unknown outcome, %d of them shown to have happened by a later read", h.counts.info, h.counts.pinned-h.counts.logged)
			if h.counts.logged > 0 {
				res.Summary += fmt.Sprintf(", %d by the commit log", h.counts.logged)
			}
			if h.counts.idle > 0 {
				res.Summary += fmt.Sprintf(", %d left out as they could have changed nothing any operation saw", h.counts.idle)
			}
			res.Summary += ")"
		}
	case Invalid:
		res.Verdict = Invalid
		res.Summary = "the kv operations are not linearizable"
		// Search the failing segment again, keeping what the
		// visualization and the anomaly need; a second search of it is as
		// long as the first at most.
		vctx, vcancel := in.search(parent)
		v2, info := failed.check(vctx, true)
		vcancel()
		if v2 == Invalid {
			res.Anomalies = append(res.Anomalies, failed.anomaly(info))
			if visualizationPath != "" {
				if err := porcupine.VisualizePath(failed.model(context.Background()), info, visualizationPath); err != nil {
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
		res.Summary = fmt.Sprintf("%s: unknown (%s)", stopReason(ctx, timeout), plural(h.counts.checked, "kv operation"))
	}
	if r := in.resolution(); r != nil && r.kv.any() {
		res.Resolved = &r.kv
		res.Summary += "; " + r.kv.String()
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
