package checker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/checker/elle"
	"github.com/faultline/faultline/history"
)

// AppendChecker is the name in Result.Checker.
const AppendChecker = "elle-append"

// AppendTxn is the append workload's one operation: a transaction whose
// micro-operations are the invocation's Then, each an append of an element
// (Value, a decimal number unique per key) or a read of a key's list; on
// ok, Responses repeat them in order with each read's list in Value (its
// elements in decimal, separated by spaces; "" for an empty list).
const AppendTxn = "append-txn"

// Micro-operation names (TxnOp.F) of the transactional workloads.
const (
	MopAppend = "append"
	MopRead   = "read"
	MopWrite  = "write"
)

// Append checks the append workload's transactions as Elle does (see
// package elle): strict serializable, or serializable when the workload
// read with serializable consistency (the invocations say so).
func Append(ctx context.Context, in *Input) Result {
	return checkTxns(ctx, in, AppendChecker, AppendTxn, elle.ListAppend)
}

// checkTxns runs package elle over the operations named f.
// The search stops, unknown, when ctx is done or in.Timeout has passed.
func checkTxns(ctx context.Context, in *Input, name, f string, w elle.Workload) Result {
	start := time.Now()
	ctx, cancel := in.search(ctx)
	defer cancel()
	stop := func() bool { return ctx.Err() != nil }
	res := Result{Checker: name}
	done := func() Result { res.Seconds = time.Since(start).Seconds(); return res }
	if why := nothingToCheck(in.Ops, f, func(g string) bool { return g == f }); why != "" {
		res.Verdict, res.Summary = Unknown, why
		return done()
	}
	txns, model, err := elleTxns(in.Ops, f, w)
	if err == nil {
		var rep *elle.Report
		if rep, err = elle.Check(txns, elle.Options{Workload: w, Model: model, Stop: stop}); err == nil {
			if model != strict {
				err = alsoStrict(rep, txns, w, stop)
			}
		}
		if err == nil {
			elleResult(&res, rep, txns, in.visualization(name+"-cycles.svg"))
			if res.Verdict == Unknown && ctx.Err() != nil {
				res.Summary += "; " + stopReason(ctx, in.Timeout)
			}
			return done()
		}
	}
	res.Verdict, res.Summary = Unknown, "cannot check: "+err.Error()
	return done()
}

const strict = "strict-serializable"

// alsoStrict adds to rep, a check against a weaker model, what a check
// against strict serializability finds besides, as anomalies rep's model
// allows: the stale reads serializable reads may make are then shown, not
// only allowed.
func alsoStrict(rep *elle.Report, txns []elle.Txn, w elle.Workload, stop func() bool) error {
	s, err := elle.Check(txns, elle.Options{Workload: w, Model: strict, Stop: stop})
	if err != nil {
		return err
	}
	extra := map[string]bool{}
	for t, n := range s.Counts {
		if _, seen := rep.Counts[t]; !seen {
			rep.Counts[t], extra[t] = n, true
		}
	}
	for _, a := range s.Anomalies {
		if extra[a.Type] {
			a.Forbidden = false
			rep.Anomalies = append(rep.Anomalies, a)
		}
	}
	return nil
}

// elleResult turns a report into the result: the summary names the model
// and what it forbids that was found, the anomalies carry the evidence,
// and the cycles are drawn to vis.
func elleResult(res *Result, rep *elle.Report, txns []elle.Txn, vis string) {
	var forbidden, allowed []string
	for _, t := range rep.Found() {
		s := fmt.Sprintf("%s ×%d", t, rep.Counts[t])
		if slices.Contains(rep.Forbidden, t) {
			forbidden = append(forbidden, s)
		} else {
			allowed = append(allowed, s)
		}
	}
	what := fmt.Sprintf("%s on %s", plural(rep.Txns, "transaction"), plural(rep.Keys, "key"))
	var outcome []string
	if rep.Info > 0 {
		outcome = append(outcome, fmt.Sprintf("%d of unknown outcome", rep.Info))
	}
	if rep.Fail > 0 {
		outcome = append(outcome, fmt.Sprintf("%d failed", rep.Fail))
	}
	if len(outcome) > 0 {
		what += " (" + strings.Join(outcome, ", ") + ")"
	}
	switch {
	case len(forbidden) > 0:
		res.Verdict = Invalid
		res.Summary = fmt.Sprintf("not %s: %s found among %s", rep.Model, strings.Join(forbidden, ", "), what)
	case rep.Unknown != "":
		res.Verdict = Unknown
		res.Summary = fmt.Sprintf("%s: unknown for %s (%s)", what, rep.Model, rep.Unknown)
	default:
		res.Verdict = Valid
		res.Summary = fmt.Sprintf("%s: no anomaly %s forbids", what, rep.Model)
	}
	if len(allowed) > 0 {
		res.Summary += fmt.Sprintf("; also found, which %s allows: %s", rep.Model, strings.Join(allowed, ", "))
	}
	// Forbidden anomalies first, and of those the cycles: they are what a
	// reader looks for.
	rank := func(a elle.Anomaly) int {
		r := 0
		if !a.Forbidden {
			r += 2
		}
		if len(a.Steps) == 0 {
			r++
		}
		return r
	}
	shown := slices.Clone(rep.Anomalies)
	slices.SortStableFunc(shown, func(a, b elle.Anomaly) int { return rank(a) - rank(b) })
	for _, a := range shown {
		line := a.Line(txns)
		if !a.Forbidden {
			line = "(allowed) " + line
		}
		res.Anomalies = append(res.Anomalies, line)
	}
	if shown := len(rep.Anomalies); shown < total(rep.Counts) {
		res.Anomalies = append(res.Anomalies, fmt.Sprintf("… and %d more not shown (counted above)", total(rep.Counts)-shown))
	}
	if res.Verdict == Invalid && vis != "" {
		if svg := elle.Drawing(rep.Anomalies, txns, 6); svg != "" {
			if err := os.WriteFile(vis, []byte(svg), 0o644); err != nil {
				res.Summary += "; the cycles could not be drawn: " + err.Error()
			} else {
				res.Visualization = filepath.Base(vis)
			}
		}
	}
}

func total(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// elleTxns reads the transactions named f out of ops, and the model they
// are to be checked against: serializable when any read with
// serializable consistency, else strict serializable.
func elleTxns(ops []history.Op, f string, w elle.Workload) ([]elle.Txn, string, error) {
	var txns []elle.Txn
	model := strict
	for _, op := range ops {
		if op.F != f {
			continue
		}
		if op.Invoke.Serializable {
			model = "serializable"
		}
		t := elle.Txn{ID: len(txns) + 1, Process: int(op.Process), Invoke: op.Invoke.Time, Complete: op.Complete.Time}
		switch op.Type() {
		case history.OK:
			t.Status = elle.OK
		case history.Fail:
			t.Status = elle.Fail
		default:
			t.Status = elle.Info
		}
		if t.Status == elle.OK && len(op.Complete.Responses) != len(op.Invoke.Then) {
			return nil, "", fmt.Errorf("%s by process %d at %s: %d responses to %d micro-operations",
				f, op.Process, seconds(op.Invoke.Time), len(op.Complete.Responses), len(op.Invoke.Then))
		}
		for i, m := range op.Invoke.Then {
			mop, err := elleMop(m, w)
			if err == nil && t.Status == elle.OK && mop.Kind == elle.Read {
				err = elleRead(&mop, op.Complete.Responses[i], w)
			}
			if err != nil {
				return nil, "", fmt.Errorf("%s by process %d at %s, micro-operation %d: %w", f, op.Process, seconds(op.Invoke.Time), i+1, err)
			}
			t.Mops = append(t.Mops, mop)
		}
		txns = append(txns, t)
	}
	return txns, model, nil
}

func elleMop(m history.TxnOp, w elle.Workload) (elle.Mop, error) {
	mop := elle.Mop{Key: m.Key}
	switch {
	case m.F == MopRead:
		mop.Kind = elle.Read
		return mop, nil
	case m.F == MopAppend && w == elle.ListAppend:
		mop.Kind = elle.Append
	case m.F == MopWrite && w == elle.Register:
		mop.Kind = elle.Write
	default:
		return mop, fmt.Errorf("%q is not a micro-operation of this workload", m.F)
	}
	v, err := strconv.ParseInt(m.Value, 10, 64)
	if err != nil || v == 0 {
		return mop, fmt.Errorf("%s of %s: value %q is not a non-zero number", m.F, m.Key, m.Value)
	}
	mop.Value = v
	return mop, nil
}

// elleRead fills in what a read returned.
func elleRead(mop *elle.Mop, r history.TxnOp, w elle.Workload) error {
	if r.F != MopRead || r.Key != mop.Key {
		return fmt.Errorf("response %s of %s answers a read of %s", r.F, r.Key, mop.Key)
	}
	if w == elle.Register {
		if r.Value == "" {
			return nil
		}
		v, err := strconv.ParseInt(r.Value, 10, 64)
		if err != nil {
			return fmt.Errorf("read of %s returned %q, not a number", mop.Key, r.Value)
		}
		mop.Value = v
		return nil
	}
	mop.List = []int64{}
	for _, f := range strings.Fields(r.Value) {
		e, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return fmt.Errorf("read of %s returned %q, not a list of numbers", mop.Key, r.Value)
		}
		mop.List = append(mop.List, e)
	}
	return nil
}
