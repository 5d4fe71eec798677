package checker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/history"
)

// RegisterChecker is the name in Result.Checker.
const RegisterChecker = "linearizable-register"

// Register checks that the register workload's reads, writes and cas
// operations are linearizable, one key at a time.
//
// The check stops with an unknown verdict, never a valid one, when ctx is
// done or in.Timeout has passed; a timeout of zero or less sets no limit
// beyond ctx, as in porcupine. If the history is not linearizable,
// porcupine's view of the failing keys (the first few, in key order) is
// written where in.Visualize says and Result.Visualization holds the
// file's base name.
func Register(ctx context.Context, in *Input) Result {
	ops, timeout, visualizationPath := in.Ops, in.Timeout, in.visualization("linearizability.html")
	start := time.Now()
	parent := ctx
	ctx, cancel := in.search(ctx)
	defer cancel()
	res := Result{Checker: RegisterChecker}
	if why := nothingToCheck(ops, "register", isRegisterOp); why != "" {
		res.Verdict, res.Summary = Unknown, why
		res.Seconds = time.Since(start).Seconds()
		return res
	}
	resolved := in.resolution()
	checks, counts := registerKeys(ops, resolved)
	// Keys are independent (a register per key), so checking each on its own
	// is exact, lets the verdict name the failing keys, and keeps memory to
	// one key's search per CPU; a long key's history is checked segment by
	// segment (see registerSegments).
	runChecks(ctx, checks)
	checks = settlePastOpen(ctx, checks)

	var failed, undecided []*keyCheck
	for i := range checks {
		switch checks[i].verdict {
		case Invalid:
			failed = append(failed, &checks[i])
		case Unknown:
			undecided = append(undecided, &checks[i])
		}
	}
	switch {
	case len(failed) > 0:
		res.Verdict = Invalid
		names := keyNames(failed)
		for _, c := range failed {
			res.Anomalies = append(res.Anomalies, c.anomaly())
		}
		if len(failed) == 1 {
			res.Summary = fmt.Sprintf("key %s is not linearizable", names[0])
		} else {
			// The anomalies name every key; the summary stays one line.
			shown := names[:min(len(names), 5)]
			res.Summary = fmt.Sprintf("%d keys are not linearizable: %s", len(failed), strings.Join(shown, ", "))
			if len(names) > len(shown) {
				res.Summary += fmt.Sprintf(" and %d more", len(names)-len(shown))
			}
		}
		if len(undecided) > 0 {
			res.Summary += fmt.Sprintf("; %s undecided (%s)", plural(len(keyNames(undecided)), "key"), stopReason(ctx, timeout))
		}
		if visualizationPath != "" {
			if err := visualizeRegister(parent, failed, timeout, visualizationPath); err != nil {
				res.Summary += "; " + err.Error()
			} else {
				res.Visualization = filepath.Base(visualizationPath)
			}
		}
	case len(undecided) > 0:
		res.Verdict = Unknown
		res.Summary = fmt.Sprintf("%s: unknown (%d of %s undecided", stopReason(ctx, timeout), len(keyNames(undecided)), plural(counts.keys, "key"))
		if len(keyNames(undecided)) < counts.keys {
			res.Summary += ", the others linearizable"
		}
		res.Summary += ")"
	default:
		res.Verdict = Valid
		res.Summary = fmt.Sprintf("%s on %s are linearizable", plural(counts.checked, "operation"), plural(counts.keys, "key"))
		if counts.info > 0 {
			res.Summary += fmt.Sprintf(" (%d of them with unknown outcome)", counts.info)
		}
	}
	if resolved != nil && resolved.register.any() {
		res.Resolved = &resolved.register
		res.Summary += "; " + resolved.register.String()
	}
	if counts.other > 0 {
		res.Summary += fmt.Sprintf("; ignored %s that are not read, write or cas", plural(counts.other, "operation"))
	}
	res.Seconds = time.Since(start).Seconds()
	return res
}

// runChecks runs checks, one per CPU at a time.
func runChecks(ctx context.Context, checks []keyCheck) {
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range checks {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			checks[i].run(ctx)
		})
	}
	wg.Wait()
}

// settlePastOpen settles the keys whose segments were cut past open
// operations (see registerSegments) and of which a segment is not
// linearizable alone: an open write left out of that segment may have
// taken effect there. It returns checks with those keys' segments
// replaced; see settleKey.
func settlePastOpen(ctx context.Context, checks []keyCheck) []keyCheck {
	var out []keyCheck
	for rest := checks; len(rest) > 0; {
		n := 1
		for n < len(rest) && rest[n].key == rest[0].key {
			n++
		}
		segs := rest[:n]
		rest = rest[n:]
		if segs[0].whole == nil || !slices.ContainsFunc(segs, func(c keyCheck) bool { return c.verdict == Invalid }) {
			out = append(out, segs...)
			continue
		}
		out = append(out, settleKey(ctx, segs)...)
	}
	return out
}

// settleKey checks each failing segment of one key again with the open
// operations called in an earlier segment whose value it may observe and
// their own segment does not (wantedBy), placed after the segment's start.
// Each such operation the search placed before its last other operation
// (the others come after everything and so never took effect) must be
// left out of its own segment, which must stay linearizable without it,
// and used by no other failing segment: then the key is linearizable, each
// of those operations having taken effect once, late. A segment still not
// linearizable proves the key is not when the other earlier open
// operations cannot help it either (proven). Anything else checks the key
// again without the cuts past open operations, which is exact but may take
// much longer.
func settleKey(ctx context.Context, segs []keyCheck) []keyCheck {
	from := map[*history.Op]int{} // an open operation's own segment
	var earlier []porcupine.Operation
	used := map[int][]*history.Op{} // by own segment
	by := map[*history.Op]bool{}
	for j := range segs {
		seen := observed(segs[j].ops, false)
		if segs[j].verdict == Invalid {
			wanted := wantedBy(segs[j].ops, earlier)
			c := keyCheck{key: segs[j].key, ops: withEarlier(segs[j].ops, wanted), linearization: true}
			if c.run(ctx); c.verdict == Invalid {
				if proven(ctx, c, len(earlier)-len(wanted)) {
					return []keyCheck{c}
				}
			}
			if c.verdict != Valid {
				return exactSegments(ctx, segs[0].key, segs[0].whole)
			}
			lin := c.info.PartialLinearizations()[0][0]
			last := len(lin) - 1
			for last >= 0 && lin[last] >= len(segs[j].ops) {
				last--
			}
			for _, i := range lin[:max(last, 0)] {
				if i < len(segs[j].ops) {
					continue
				}
				op := c.ops[i].Metadata.(*history.Op)
				if by[op] {
					return exactSegments(ctx, segs[0].key, segs[0].whole)
				}
				by[op] = true
				used[from[op]] = append(used[from[op]], op)
			}
			segs[j].verdict = Valid
		}
		for _, op := range segs[j].ops {
			// One its own segment observed took effect there, once.
			if in := op.Input.(regInput); in.open && !seen[in.value] {
				from[op.Metadata.(*history.Op)] = j
				earlier = append(earlier, op)
			}
		}
	}
	for s, ops := range used {
		c := keyCheck{key: segs[s].key, ops: slices.DeleteFunc(slices.Clone(segs[s].ops), func(op porcupine.Operation) bool {
			return slices.Contains(ops, op.Metadata.(*history.Op))
		})}
		if c.run(ctx); c.verdict != Valid {
			return exactSegments(ctx, segs[0].key, segs[0].whole)
		}
	}
	return segs
}

// proven says whether c, a segment with the earlier open operations it
// may observe and not linearizable, proves its key not linearizable. The
// other earlier open operations, others of them, are never read in c and
// no cas of c that may have taken effect expects their value, so all they
// could do is make a cas that failed find another value than the one it
// expected: c is searched again allowing that many anonymous writes, each
// just before a failed cas, which can do whatever any of them can.
func proven(ctx context.Context, c keyCheck, others int) bool {
	failed := 0
	for _, op := range c.ops {
		if in, out := op.Input.(regInput), op.Output.(regOutput); in.f == history.CAS && !in.info && !out.succeeded {
			failed++
		}
	}
	if others = min(others, failed); others == 0 {
		return true
	}
	anon := keyCheck{key: c.key, ops: c.ops, anonymous: others}
	anon.run(ctx)
	return anon.verdict == Invalid
}

// wantedBy are the operations of earlier whose value seg may observe,
// directly or through a cas of earlier that expects it.
func wantedBy(seg, earlier []porcupine.Operation) []porcupine.Operation {
	wants := observed(seg, true)
	var out []porcupine.Operation
	taken := make([]bool, len(earlier))
	for grew := true; grew; {
		grew = false
		for i, op := range earlier {
			if in := op.Input.(regInput); wants[in.value] && !taken[i] {
				out, taken[i] = append(out, op), true
				if in.f == history.CAS {
					wants[in.expect], grew = true, true
				}
			}
		}
	}
	return out
}

// observed are the values ops read or found by a cas that succeeded, and
// with open those an open cas expects.
func observed(ops []porcupine.Operation, open bool) map[string]bool {
	seen := map[string]bool{}
	for _, op := range ops {
		in, out := op.Input.(regInput), op.Output.(regOutput)
		switch {
		case in.info:
			if open && in.f == history.CAS {
				seen[in.expect] = true
			}
		case in.f == history.Read:
			seen[out.value] = true
		case in.f == history.CAS && out.succeeded:
			seen[in.expect] = true
		}
	}
	return seen
}

// withEarlier is seg with copies of the open operations earlier, called
// just after seg's first operation, which starts it from the value the cut
// left, and after everything else in seg.
func withEarlier(seg, earlier []porcupine.Operation) []porcupine.Operation {
	out := slices.Clone(seg)
	for _, op := range earlier {
		op.Call = seg[0].Return + 1
		out = append(out, op)
	}
	return compactClients(out)
}

// exactSegments checks one key's operations cut only where that is exact.
func exactSegments(ctx context.Context, key string, ops []porcupine.Operation) []keyCheck {
	segs, _ := registerSegments(ops, false)
	var out []keyCheck
	for _, seg := range segs {
		out = append(out, keyCheck{key: key, ops: seg})
	}
	runChecks(ctx, out)
	return out
}

// regInput is a porcupine operation's input: what was asked.
type regInput struct {
	key    string
	f      string
	value  string // written by write and cas
	expect string // compared by cas
	info   bool   // outcome unknown
	// open marks an operation of unknown outcome that no commit log
	// resolved: it may take effect at any moment after its call, or never.
	open bool
}

// regOutput is a porcupine operation's output: what was answered.
type regOutput struct {
	value     string // returned by read
	succeeded bool   // cas found expect
}

// registerStep is the model of one key: the state is its value, "" while
// the key does not exist.
//
// An info operation may have taken effect at any moment after its
// invocation, or never. It gets a return time after every other event, so
// porcupine may linearize it anywhere after its invocation, including after
// everything else, which is indistinguishable from it never having happened:
// nothing later observes the state it leaves. The step can therefore be
// deterministic and apply the operation as it would have run at that point:
// an info write writes, an info cas writes only when it finds its expected
// value and otherwise changes nothing. Whether it took effect is then decided
// by where the search places it, not by the step.
func registerStep(state, input, output any) (bool, any) {
	s := state.(string)
	in := input.(regInput)
	out := output.(regOutput)
	switch {
	case in.f == history.Read:
		// Returning state, not s, avoids boxing the string again.
		return out.value == s, state
	case in.f == history.Write:
		return true, in.value
	case in.info || out.succeeded:
		if s == in.expect {
			return true, in.value
		}
		return in.info, state
	default: // a cas that found another value
		return s != in.expect, state
	}
}

var stateSeed = maphash.MakeSeed()

// registerModel is the per-key model. Step stays free of ctx so that the
// visualization, which replays steps after the check, never sees a
// cancelled one; StepContext is what makes ctx stop the search.
func registerModel(ctx context.Context) porcupine.Model {
	return porcupine.Model{
		Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
			// Only used to visualize several failing keys in one file.
			var parts [][]porcupine.Operation
			idx := map[string]int{}
			for _, op := range ops {
				k := op.Input.(regInput).key
				i, ok := idx[k]
				if !ok {
					i = len(parts)
					idx[k] = i
					parts = append(parts, nil)
				}
				parts[i] = append(parts[i], op)
			}
			return parts
		},
		Init: func() any { return "" },
		Step: registerStep,
		StepContext: func(_ context.Context, state, input, output any) (bool, any) {
			// Porcupine's own context only carries its timeout; ours also
			// carries the caller's cancellation. A false step here may make
			// porcupine report Illegal, which keyCheck.run discards.
			if ctx.Err() != nil {
				return false, state
			}
			return registerStep(state, input, output)
		},
		Equal: func(a, b any) bool { return a.(string) == b.(string) },
		Hash:  func(s any) uint64 { return maphash.String(stateSeed, s.(string)) },
		DescribeOperation: func(input, output any) string {
			in, out := input.(regInput), output.(regOutput)
			var s string
			switch in.f {
			case history.Read:
				s = fmt.Sprintf("read(%s) → %s", in.key, describeValue(out.value))
			case history.Write:
				s = fmt.Sprintf("write(%s, %q)", in.key, in.value)
			default:
				s = fmt.Sprintf("cas(%s, %s, %q)", in.key, describeValue(in.expect), in.value)
				if !in.info {
					if out.succeeded {
						s += " → ok"
					} else {
						s += " → failed"
					}
				}
			}
			if in.info {
				s += " → ?"
			}
			return s
		},
		DescribeState:             describeValue,
		DescribeOperationMetadata: describeOpMetadata,
	}
}

// anonState is a register's value and how many anonymous writes are left.
type anonState struct {
	value string
	left  int
}

// anonymous is the value of an anonymous write: no operation of the
// workloads writes a NUL.
const anonymous = "\x00anonymous"

// anonymousModel is the register model with n anonymous writes to place:
// one may take effect just before a cas that failed, which then found
// another value than it expected.
func anonymousModel(ctx context.Context, n int) porcupine.Model {
	m := registerModel(ctx)
	step := func(state, input, output any) (bool, any) {
		st := state.(anonState)
		if ok, next := registerStep(st.value, input, output); ok {
			return true, anonState{next.(string), st.left}
		}
		in, out := input.(regInput), output.(regOutput)
		if in.f == history.CAS && !in.info && !out.succeeded && st.left > 0 {
			return true, anonState{anonymous, st.left - 1}
		}
		return false, state
	}
	m.Init = func() any { return anonState{left: n} }
	m.Step = step
	m.StepContext = func(_ context.Context, state, input, output any) (bool, any) {
		if ctx.Err() != nil {
			return false, state
		}
		return step(state, input, output)
	}
	m.Equal = func(a, b any) bool { return a.(anonState) == b.(anonState) }
	m.Hash = func(s any) uint64 {
		st := s.(anonState)
		return maphash.String(stateSeed, st.value) ^ uint64(st.left)*0x9e3779b97f4a7c15
	}
	m.DescribeState = func(s any) string { return describeValue(s.(anonState).value) }
	return m
}

type registerCounts struct{ keys, checked, info, other int }

func init() {
	known(plainPutFacts, history.Write)
	// A cas wrote only when its compare succeeded.
	known(func(op *history.Op, st *streams) {
		putFacts(op, st, op.Complete.Type == history.OK && op.Complete.Succeeded)
	}, history.CAS)
}

func isRegisterOp(f string) bool { return f == history.Read || f == history.Write || f == history.CAS }

// registerKeys turns the operations that constrain the registers into
// porcupine operations, grouped by key in key order, a key's in segments
// in time order.
//
// Writes of unknown outcome that res resolved are placed in the time their
// revision was committed in, or left out when they did not take effect.
func registerKeys(ops []history.Op, res *resolution) ([]keyCheck, registerCounts) {
	var n registerCounts
	// Porcupine only compares times, so "after every other event" can be a
	// real time, which keeps the visualization's time axis readable.
	var end int64
	for _, op := range ops {
		end = max(end, op.Invoke.Time)
		if !op.Pending() {
			end = max(end, op.Complete.Time)
		}
	}
	if end < math.MaxInt64 {
		end++
	}
	byKey := map[string][]*history.Op{}
	for i := range ops {
		op := &ops[i]
		switch {
		case !isRegisterOp(op.F):
			n.other++
			continue
		case op.Type() == history.Fail:
			// It certainly did not happen.
			continue
		case op.Type() != history.OK && op.F == history.Read:
			// A read of unknown outcome neither changed nor told anything.
			continue
		}
		if r, ok := res.of(op); ok && r.drop {
			continue // it did not take effect
		}
		byKey[op.Invoke.Key] = append(byKey[op.Invoke.Key], op)
	}
	var out []keyCheck
	for key, kops := range byKey {
		pops := porcupineOps(kops, end, res)
		segs, past := registerSegments(pops, true)
		for _, seg := range segs {
			c := keyCheck{key: key, ops: seg}
			if past {
				c.whole = pops
			}
			out = append(out, c)
		}
		n.checked += len(kops)
		for _, op := range kops {
			if op.Type() != history.OK {
				n.info++
			}
		}
	}
	// Stable: a key's segments stay in order.
	slices.SortStableFunc(out, func(a, b keyCheck) int { return strings.Compare(a.key, b.key) })
	n.keys = len(byKey)
	return out, n
}

// porcupineOps converts one key's operations.
func porcupineOps(ops []*history.Op, end int64, res *resolution) []porcupine.Operation {
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		in := regInput{key: op.Invoke.Key, f: op.F, value: op.Invoke.Value, expect: op.Invoke.Expect}
		call, ret := op.Invoke.Time, op.Complete.Time
		if op.Type() != history.OK {
			in.info, in.open = true, true
			ret = end
			if r, ok := res.of(op); ok {
				// It took effect while its revision was committed.
				call, ret = r.call, min(r.ret, end)
				in.open = false
			}
		}
		out[i] = porcupine.Operation{
			Input:    in,
			Call:     call,
			Output:   regOutput{value: op.Complete.Value, succeeded: op.Complete.Succeeded},
			Return:   ret,
			Metadata: op,
		}
	}
	return compactClients(out)
}

// compactClients numbers the processes of ops from zero: the visualization
// draws one row for every client id up to the largest.
func compactClients(ops []porcupine.Operation) []porcupine.Operation {
	var procs []history.Process
	for _, op := range ops {
		procs = append(procs, op.Metadata.(*history.Op).Process)
	}
	slices.Sort(procs)
	procs = slices.Compact(procs)
	for i := range ops {
		ops[i].ClientId, _ = slices.BinarySearch(procs, ops[i].Metadata.(*history.Op).Process)
	}
	return ops
}

// keyNames are the keys of cs, each once, in order.
func keyNames(cs []*keyCheck) []string {
	var names []string
	for _, c := range cs {
		if len(names) == 0 || names[len(names)-1] != c.key {
			names = append(names, c.key)
		}
	}
	return names
}

// registerSegmentOps is the size a key's segment grows to before it may be
// cut (see registerSegments).
const registerSegmentOps = 1000

// registerSegments cuts one key's operations, in time order, at operations
// that overlap no other and leave a known value: an ok read (its value),
// write (its value) or cas that succeeded (its new value). Such an
// operation b is linearized after every operation that returned before it
// was invoked and before every one invoked after it returned, which is all
// the others; so the history is linearizable exactly when the operations
// up to b (b last) are, and so are those after it starting from b's value.
// The segment after starts with b's value as a write over b's interval
// (before every other of its operations), carrying b's metadata, so that
// an anomaly or a visualization names where the value came from.
//
// A write of unknown outcome that no commit log resolved (open) stays in
// flight forever: its return is after every other event, as it may take
// effect anywhere after its call, or never. Cut exactly, nothing after its
// call is cut. With pastOpen, cuts ignore open operations: each stays in
// the segment of its call only, where it may also come after b, which is
// its never taking effect. A linearizable history whose open writes took
// effect in the segment of their call, or never, comes out so; a later
// segment that is not linearizable may only need an open write that was
// left out of it (see settlePastOpen). past says whether a cut passed an
// open operation.
func registerSegments(ops []porcupine.Operation, pastOpen bool) (segs [][]porcupine.Operation, past bool) {
	if len(ops) <= registerSegmentOps {
		return [][]porcupine.Operation{ops}, false
	}
	ops = slices.Clone(ops)
	slices.SortStableFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	var out [][]porcupine.Operation
	var seg []porcupine.Operation
	lastRet := int64(math.MinInt64) // the latest return of ops[:i], open ones aside with pastOpen
	open := false                   // an open operation is in seg
	for i, op := range ops {
		seg = append(seg, op)
		isolated := lastRet < op.Call && i+1 < len(ops) && op.Return < ops[i+1].Call
		if op.Input.(regInput).open && pastOpen {
			open = true
		} else {
			lastRet = max(lastRet, op.Return)
		}
		v, known := valueAfter(op)
		if !isolated || !known || len(seg) < registerSegmentOps {
			continue
		}
		past = past || open
		open = false
		out = append(out, compactClients(seg))
		in := op.Input.(regInput)
		seg = []porcupine.Operation{{
			Input:    regInput{key: in.key, f: history.Write, value: v},
			Output:   regOutput{},
			Call:     op.Call,
			Return:   op.Return,
			Metadata: op.Metadata,
		}}
	}
	return append(out, compactClients(seg)), past
}

// valueAfter is the register's value after op, when op alone says it.
func valueAfter(op porcupine.Operation) (string, bool) {
	in, out := op.Input.(regInput), op.Output.(regOutput)
	switch {
	case in.info:
		return "", false
	case in.f == history.Read:
		return out.value, true
	case in.f == history.Write || out.succeeded:
		return in.value, true
	}
	return "", false
}

// keyCheck is the check of one key, or of one segment of it.
type keyCheck struct {
	key     string
	ops     []porcupine.Operation
	verdict Verdict
	info    porcupine.LinearizationInfo // kept when invalid
	// whole is all of the key's operations when its segments were cut past
	// an open operation (see settlePastOpen).
	whole []porcupine.Operation
	// linearization keeps info when the check is valid too: it then holds
	// the linearization found.
	linearization bool
	// anonymous is how many writes of a value nothing observes the search
	// may place (see proven).
	anonymous int
}

func (c *keyCheck) run(ctx context.Context) {
	c.verdict = Unknown
	var limit time.Duration
	if d, ok := ctx.Deadline(); ok {
		if limit = time.Until(d); limit <= 0 {
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	model := registerModel(ctx)
	if c.anonymous > 0 {
		model = anonymousModel(ctx, c.anonymous)
	}
	res, info := porcupine.CheckOperationsVerbose(model, c.ops, limit)
	switch {
	case res == porcupine.Ok:
		// Every step of a complete linearization succeeded, so a
		// cancellation during the search cannot have faked it.
		c.verdict = Valid
		if c.linearization {
			c.info = info
		}
	case res == porcupine.Illegal && ctx.Err() == nil:
		// No step was refused because of ctx, so the search was complete.
		c.verdict = Invalid
		c.info = info
	}
}

// anomaly says in words why the key is not linearizable: which operations
// cannot follow the longest linearizable prefix porcupine found, and what
// the value was at its end.
func (c *keyCheck) anomaly() string {
	partials := c.info.PartialLinearizations()
	var longest []int
	if len(partials) > 0 {
		ps := partials[0]
		// Porcupine returns them in map order; pick one deterministically.
		slices.SortFunc(ps, func(a, b []int) int {
			if len(a) != len(b) {
				return len(b) - len(a)
			}
			return slices.Compare(a, b)
		})
		if len(ps) > 0 {
			longest = ps[0]
		}
	}
	var state any = ""
	var writer *history.Op
	done := make([]bool, len(c.ops))
	for _, id := range longest {
		op := c.ops[id]
		_, next := registerStep(state, op.Input, op.Output)
		if next != state {
			writer = op.Metadata.(*history.Op)
		}
		state = next
		done[id] = true
	}
	// The operations that could come next are those invoked before the
	// earliest return among the rest; none of them can (else the prefix
	// would be longer), and the first to return is the one to name.
	var rest []porcupine.Operation
	minReturn := int64(math.MaxInt64)
	for i, op := range c.ops {
		if !done[i] {
			rest = append(rest, op)
			minReturn = min(minReturn, op.Return)
		}
	}
	var stuck []porcupine.Operation
	for _, op := range rest {
		if op.Call <= minReturn {
			if ok, _ := registerStep(state, op.Input, op.Output); !ok {
				stuck = append(stuck, op)
			}
		}
	}
	prefix := fmt.Sprintf("the longest linearizable prefix (%d of %s)", len(longest), plural(len(c.ops), "operation"))
	if len(stuck) == 0 {
		return fmt.Sprintf("key %s: no order of its operations is linearizable; %s ends with the value %s",
			c.key, prefix, describeValue(state))
	}
	slices.SortFunc(stuck, func(a, b porcupine.Operation) int { return cmp.Compare(a.Return, b.Return) })
	s := fmt.Sprintf("key %s: %s, but %s leaves ", c.key, describeOp(stuck[0].Metadata.(*history.Op)), prefix)
	if writer == nil {
		s += "the key without a value"
	} else {
		s += fmt.Sprintf("the value %q (%s)", state, describeOp(writer))
	}
	if len(stuck) > 1 {
		s += fmt.Sprintf("; %s cannot follow it either", plural(len(stuck)-1, "other operation"))
	}
	return s
}

// maxVisualizedKeys bounds the keys drawn in one visualization: it stays
// readable, and redrawing them repeats their search (see visualizeRegister).
const maxVisualizedKeys = 8

// visualizeRegister writes porcupine's view of the failing keys. One key's
// check already left its linearization info; porcupine draws one info per
// file, so several keys are checked again together.
func visualizeRegister(ctx context.Context, failed []*keyCheck, timeout time.Duration, path string) error {
	info := failed[0].info
	if len(failed) > 1 && ctx.Err() == nil {
		var ops []porcupine.Operation
		for _, c := range failed[:min(len(failed), maxVisualizedKeys)] {
			ops = append(ops, c.ops...)
		}
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		// If the repeat does not finish, the first key alone is drawn.
		if res, all := porcupine.CheckOperationsVerbose(registerModel(ctx), compactClients(ops), timeout); res == porcupine.Illegal && ctx.Err() == nil {
			info = all
		}
	}
	if err := porcupine.VisualizePath(registerModel(context.Background()), info, path); err != nil {
		return fmt.Errorf("writing the linearizability visualization: %w", err)
	}
	return nil
}

func describeOp(op *history.Op) string {
	var s string
	switch op.F {
	case history.Read:
		s = "read"
	case history.Write:
		s = fmt.Sprintf("write of %q", op.Invoke.Value)
	default:
		s = fmt.Sprintf("cas from %s to %q", describeValue(op.Invoke.Expect), op.Invoke.Value)
	}
	s += fmt.Sprintf(" by process %d at %s", op.Process, seconds(op.Invoke.Time))
	switch {
	case op.Type() != history.OK:
		return s + ", outcome unknown"
	case op.F == history.Read:
		return s + " returned " + describeValue(op.Complete.Value)
	case op.F == history.CAS && op.Complete.Succeeded:
		return s + " succeeded"
	case op.F == history.CAS:
		return s + " failed"
	}
	return s
}

func describeValue(v any) string {
	if v.(string) == "" {
		return "no value"
	}
	return fmt.Sprintf("%q", v)
}

func seconds(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/float64(time.Second)) }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// stopReason says what stopped a search: its memory limit, its timeout
// or the check's cancellation.
func stopReason(search context.Context, timeout time.Duration) string {
	var mem ErrMemory
	cause := context.Cause(search)
	switch {
	case errors.As(cause, &mem):
		return mem.Error()
	case cause != nil && !errors.Is(cause, context.DeadlineExceeded):
		return "check cancelled"
	}
	if timeout > 0 {
		return fmt.Sprintf("checker timed out after %s", timeout)
	}
	return "checker ran out of time"
}

// describeOpMetadata is the hover text of an operation in porcupine's
// visualization: who ran it, when, how it ended and who served it.
func describeOpMetadata(m any) string {
	op := m.(*history.Op)
	s := fmt.Sprintf("process %d, invoked at %s", op.Process, seconds(op.Invoke.Time))
	switch {
	case op.Pending():
		s += ", never completed"
	case op.Type() == history.Info:
		s += fmt.Sprintf(", info at %s", seconds(op.Complete.Time))
	default:
		s += fmt.Sprintf(", ok at %s", seconds(op.Complete.Time))
		if op.Complete.Revision > 0 {
			s += fmt.Sprintf(", revision %d", op.Complete.Revision)
		}
	}
	if op.Complete.Member != "" {
		s += ", member " + op.Complete.Member
	}
	if op.Complete.Error != "" {
		s += ": " + op.Complete.Error
	}
	return s
}
