package checker

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/history"
)

// TestRegisterFixtures checks every history in testdata/register; every
// invalid one comes with porcupine's visualization.
func TestRegisterFixtures(t *testing.T) {
	runFixtures(t, "register", RegisterChecker, func(t *testing.T, ops []history.Op, _ []history.Event, vis string) Result {
		return Register(t.Context(), &Input{Ops: ops, Timeout: time.Minute, Visualize: at(vis)})
	}, func(string) bool { return true })
}

// hardRegisterHistory has n concurrent writes and a concurrent read of a
// value nobody wrote. Porcupine needs about n·2ⁿ steps to rule out every
// order, so for n around 25 it cannot finish in any test's lifetime.
func hardRegisterHistory(n int) []history.Op {
	var ops []history.Op
	op := func(p int, f, value, result string) {
		ops = append(ops, history.Op{Process: history.Process(p), F: f,
			Invoke:   &history.Event{Type: history.Invoke, Process: history.Process(p), F: f, Time: 1, Key: "k", Value: value},
			Complete: &history.Event{Type: history.OK, Process: history.Process(p), F: f, Time: 2, Key: "k", Value: result}})
	}
	for i := range n {
		op(i, history.Write, fmt.Sprintf("w-%d", i), "")
	}
	op(n, history.Read, "", "never-written")
	return ops
}

func TestRegisterUndecided(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	valid := simulateRegister(1, 200, 3, 5, 0.01)
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		ops     []history.Op
		timeout time.Duration
		summary string
	}{
		{"cancelled before the check", func() (context.Context, context.CancelFunc) { return cancelled, func() {} },
			valid, time.Minute, "check cancelled: unknown (3 of 3 keys undecided)"},
		{"deadline already passed", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		}, valid, 0, "checker ran out of time: unknown (3 of 3 keys undecided)"},
		{"timeout", func() (context.Context, context.CancelFunc) { return t.Context(), func() {} },
			hardRegisterHistory(25), 50 * time.Millisecond, "checker timed out after 50ms: unknown (1 of 1 key undecided)"},
		{"cancelled during the check", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, hardRegisterHistory(25), 0, "check cancelled: unknown (1 of 1 key undecided)"},
		{"caller's deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(t.Context(), 50*time.Millisecond)
		}, hardRegisterHistory(25), 0, "checker ran out of time: unknown (1 of 1 key undecided)"},
		{"timeout with another key valid", func() (context.Context, context.CancelFunc) { return t.Context(), func() {} },
			append(hardRegisterHistory(25), valid...), 200 * time.Millisecond, "unknown (1 of 4 keys undecided, the others linearizable)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			vis := filepath.Join(t.TempDir(), "register.html")
			res := Register(ctx, &Input{Ops: tt.ops, Timeout: tt.timeout, Visualize: at(vis)})
			if res.Verdict != Unknown {
				t.Fatalf("verdict %s (%s), want unknown", res.Verdict, res.Summary)
			}
			if !strings.Contains(res.Summary, tt.summary) {
				t.Errorf("summary %q, want it to contain %q", res.Summary, tt.summary)
			}
			if _, err := os.Stat(vis); err == nil {
				t.Error("visualization written for an unknown verdict")
			}
		})
	}
}

func TestRegisterSimulated(t *testing.T) {
	ops := simulateRegister(7, 5000, 5, 10, 0.02)
	if res := Register(t.Context(), &Input{Ops: ops, Timeout: time.Minute}); res.Verdict != Valid {
		t.Fatalf("simulated correct register: %s: %s %q", res.Verdict, res.Summary, res.Anomalies)
	}

	// One read in the middle returns a value nobody wrote.
	bad := slices.Clone(ops)
	i := len(bad) / 2
	for bad[i].F != history.Read || bad[i].Type() != history.OK {
		i++
	}
	bad[i].Complete.Value = "never-written"
	res := Register(t.Context(), &Input{Ops: bad, Timeout: time.Minute})
	if res.Verdict != Invalid {
		t.Fatalf("corrupted read: %s: %s", res.Verdict, res.Summary)
	}
	want := fmt.Sprintf("key %s: read by process %d at %s returned \"never-written\"",
		bad[i].Invoke.Key, bad[i].Process, seconds(bad[i].Invoke.Time))
	if len(res.Anomalies) != 1 || !strings.HasPrefix(res.Anomalies[0], want) {
		t.Errorf("anomalies %q, want one starting %q", res.Anomalies, want)
	}
}

// simulateRegister records clients using a correct register: each
// operation takes effect at a random moment inside its interval. A fraction
// infoRate of the operations end in info, half of those having taken
// effect; their client continues as a new process, and the last operation
// of such a client is left without completion.
func simulateRegister(seed uint64, nOps, nKeys, nClients int, infoRate float64) []history.Op {
	rng := rand.New(rand.NewPCG(seed, seed))
	type simOp struct {
		op      history.Op
		at      int64 // when it takes effect
		applied bool
	}
	sims := make([]simOp, 0, nOps)
	nextProcess := nClients
	for c := range nClients {
		p := history.Process(c)
		t := rng.Int64N(int64(time.Millisecond))
		for range nOps / nClients {
			d := int64(time.Millisecond) + rng.Int64N(int64(10*time.Millisecond))
			s := simOp{at: t + rng.Int64N(d+1), applied: true}
			s.op.Process = p
			s.op.Invoke = &history.Event{Type: history.Invoke, Process: p, Time: t, Key: fmt.Sprintf("k%d", rng.IntN(nKeys))}
			s.op.Complete = &history.Event{Type: history.OK, Process: p, Time: t + d}
			switch r := rng.Float64(); {
			case r < 0.5:
				s.op.F = history.Read
			case r < 0.8:
				s.op.F = history.Write
			default:
				s.op.F = history.CAS
			}
			if rng.Float64() < infoRate {
				s.op.Complete.Type = history.Info
				s.op.Complete.Error = "context deadline exceeded"
				s.applied = rng.IntN(2) == 0
				p = history.Process(nextProcess)
				nextProcess++
			}
			sims = append(sims, s)
			t += d + rng.Int64N(int64(time.Millisecond))
		}
		if last := &sims[len(sims)-1]; last.op.Type() == history.Info {
			last.op.Complete.Time = math.MaxInt64
		}
	}
	// Apply the operations in the order they took effect to fill in
	// arguments and results.
	slices.SortFunc(sims, func(a, b simOp) int { return cmp.Compare(a.at, b.at) })
	state := map[string]string{}
	written := map[string][]string{}
	for i := range sims {
		s := &sims[i]
		s.op.Invoke.F, s.op.Complete.F = s.op.F, s.op.F
		k := s.op.Invoke.Key
		s.op.Complete.Key = k
		switch s.op.F {
		case history.Read:
			if s.op.Type() == history.OK {
				s.op.Complete.Value = state[k]
			}
		case history.Write:
			s.op.Invoke.Value = fmt.Sprintf("w-%d", i)
			if s.applied {
				state[k] = s.op.Invoke.Value
				written[k] = append(written[k], state[k])
			}
		case history.CAS:
			s.op.Invoke.Value = fmt.Sprintf("w-%d", i)
			// Mostly the current value, else an older one.
			s.op.Invoke.Expect = state[k]
			if w := written[k]; len(w) > 0 && rng.IntN(3) == 0 {
				s.op.Invoke.Expect = w[rng.IntN(len(w))]
			}
			if s.applied && state[k] == s.op.Invoke.Expect {
				s.op.Complete.Succeeded = s.op.Type() == history.OK
				state[k] = s.op.Invoke.Value
				written[k] = append(written[k], state[k])
			}
		}
	}
	ops := make([]history.Op, len(sims))
	for i, s := range sims {
		ops[i] = s.op
	}
	slices.SortFunc(ops, func(a, b history.Op) int { return cmp.Compare(a.Invoke.Time, b.Invoke.Time) })
	return ops
}

// BenchmarkRegister checks histories of a correct register: 10 keys, 20
// clients, 1% info operations.
func BenchmarkRegister(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		ops := simulateRegister(1, n, 10, 20, 0.01)
		b.Run(fmt.Sprintf("ops=%d", n), func(b *testing.B) {
			for b.Loop() {
				if res := Register(b.Context(), &Input{Ops: ops}); res.Verdict != Valid {
					b.Fatalf("%s: %s", res.Verdict, res.Summary)
				}
			}
		})
	}
}

// BenchmarkRegisterLong checks a million operations of a correct register
// (10 keys, 20 clients); the goal: within 30 s. With unknown outcomes, 5%
// of the operations have one that nothing resolves, which the cuts pass
// (see registerSegments).
func BenchmarkRegisterLong(b *testing.B) {
	for _, info := range []float64{0, 0.05} {
		b.Run(fmt.Sprintf("unknown=%g%%", info*100), func(b *testing.B) {
			ops := simulateRegister(1, 1_000_000, 10, 20, info)
			b.ResetTimer()
			for b.Loop() {
				if res := Register(b.Context(), &Input{Ops: ops, Timeout: 2 * time.Minute, MemoryLimit: 4 << 30}); res.Verdict != Valid {
					b.Fatalf("%s: %s", res.Verdict, res.Summary)
				}
			}
		})
	}
}

// TestRegisterSegments: a long key is cut into segments and stays valid; a
// read right after a cut that returns a value overwritten before it is
// still caught.
func TestRegisterSegments(t *testing.T) {
	ops := simulateRegister(3, 20_000, 2, 10, 0)
	checks, _ := registerKeys(ops, nil)
	if len(checks) <= 2 {
		t.Fatalf("%d checks of 2 keys, want segments", len(checks))
	}
	if res := Register(t.Context(), &Input{Ops: ops, Timeout: time.Minute}); res.Verdict != Valid {
		t.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
	}
	// The first ok read of the second segment returns the first value
	// written in the first: the cut's operation came between.
	first, second := checks[0].ops, checks[1].ops
	var old string
	for _, op := range first {
		if in := op.Input.(regInput); in.f == history.Write {
			old = in.value
			break
		}
	}
	bad := slices.Clone(ops)
	for _, op := range second[1:] {
		m := op.Metadata.(*history.Op)
		if m.F == history.Read && m.Type() == history.OK {
			i := slices.IndexFunc(bad, func(o history.Op) bool { return o.Process == m.Process && o.Invoke.Time == m.Invoke.Time })
			bad[i].Complete.Value = old
			break
		}
	}
	res := Register(t.Context(), &Input{Ops: bad, Timeout: time.Minute})
	if res.Verdict != Invalid {
		t.Fatalf("stale read after a cut: verdict %s: %s", res.Verdict, res.Summary)
	}
	if !strings.HasPrefix(res.Summary, "key "+checks[0].key+" is not linearizable") {
		t.Errorf("summary %q", res.Summary)
	}
}

// TestRegisterSegmentsPastUnknown: writes of unknown outcome that no commit
// log resolved no longer stop the cuts; one that took effect only after a
// cut, which the segments leave out, is found late in the segment that
// observes it, and a read of a value never written is caught in its
// segment.
func TestRegisterSegmentsPastUnknown(t *testing.T) {
	ops := simulateRegister(5, 20_000, 1, 2, 0.05)
	checks, _ := registerKeys(ops, nil)
	if len(checks) < 10 || checks[0].whole == nil {
		t.Fatalf("%d checks of one key with 5%% unknown outcomes, want segments cut past them", len(checks))
	}
	if res := Register(t.Context(), &Input{Ops: ops, Timeout: time.Minute}); res.Verdict != Valid {
		t.Fatalf("verdict %s: %s", res.Verdict, res.Summary)
	}

	// A write called first takes effect after everything else: the last
	// read returns its value.
	var last int64
	for _, op := range ops {
		last = max(last, op.Invoke.Time)
		if op.Complete.Time < math.MaxInt64 {
			last = max(last, op.Complete.Time)
		}
	}
	late := func(read string) []history.Op {
		w := history.Op{Process: 9000, F: history.Write,
			Invoke:   &history.Event{Type: history.Invoke, Process: 9000, F: history.Write, Time: ops[0].Invoke.Time, Key: "k0", Value: "late"},
			Complete: &history.Event{Type: history.Info, Process: 9000, F: history.Write, Time: math.MaxInt64, Key: "k0", Error: "context deadline exceeded"}}
		r := history.Op{Process: 9001, F: history.Read,
			Invoke:   &history.Event{Type: history.Invoke, Process: 9001, F: history.Read, Time: last + 1e6, Key: "k0"},
			Complete: &history.Event{Type: history.OK, Process: 9001, F: history.Read, Time: last + 2e6, Key: "k0", Value: read}}
		return append(slices.Clone(ops), w, r)
	}
	good := late("late")
	checks, _ = registerKeys(good, nil)
	runChecks(t.Context(), checks)
	if !slices.ContainsFunc(checks, func(c keyCheck) bool { return c.verdict == Invalid }) {
		t.Fatal("no segment needs the write left out of it: the test does not reach the check without those cuts")
	}
	if res := Register(t.Context(), &Input{Ops: good, Timeout: time.Minute}); res.Verdict != Valid {
		t.Fatalf("a write of unknown outcome that took effect last: verdict %s: %s", res.Verdict, res.Summary)
	}
	// The segment that reads it fails with every earlier write of unknown
	// outcome that could explain what it saw, so the key is not
	// linearizable, without checking it whole.
	res := Register(t.Context(), &Input{Ops: late("never written"), Timeout: time.Minute})
	if res.Verdict != Invalid {
		t.Fatalf("a read of a value never written: verdict %s: %s", res.Verdict, res.Summary)
	}
	if len(res.Anomalies) != 1 || !strings.Contains(res.Anomalies[0], `"never written"`) {
		t.Errorf("anomalies %q, want the read of \"never written\"", res.Anomalies)
	}

	// A cas that failed, explained by a write of unknown outcome having
	// taken effect just before it (the early one, or one of the last
	// segment's own): valid, or at worst unknown, never invalid.
	failedCAS := append(late("late")[:len(ops)+1],
		history.Op{Process: 9002, F: history.Write,
			Invoke:   &history.Event{Type: history.Invoke, Process: 9002, F: history.Write, Time: last + 1e6, Key: "k0", Value: "x"},
			Complete: &history.Event{Type: history.OK, Process: 9002, F: history.Write, Time: last + 2e6, Key: "k0"}},
		history.Op{Process: 9003, F: history.CAS,
			Invoke:   &history.Event{Type: history.Invoke, Process: 9003, F: history.CAS, Time: last + 3e6, Key: "k0", Expect: "x", Value: "y"},
			Complete: &history.Event{Type: history.OK, Process: 9003, F: history.CAS, Time: last + 4e6, Key: "k0"}})
	if res := Register(t.Context(), &Input{Ops: failedCAS, Timeout: 3 * time.Second}); res.Verdict == Invalid {
		t.Fatalf("a cas that failed because a write of unknown outcome took effect: %s", res.Summary)
	}
}

// TestProven: writes nothing observes explain a cas that failed, and
// nothing else; without any, the failing segment proves its key invalid.
func TestProven(t *testing.T) {
	op := func(call int64, in regInput, out regOutput) porcupine.Operation {
		in.key = "k"
		return porcupine.Operation{ClientId: int(call), Input: in, Output: out, Call: call, Return: call + 1,
			Metadata: &history.Op{Process: history.Process(call), F: in.f}}
	}
	write := op(0, regInput{f: history.Write, value: "a"}, regOutput{})
	failedCAS := keyCheck{key: "k", ops: []porcupine.Operation{write, op(2, regInput{f: history.CAS, expect: "a", value: "b"}, regOutput{})}}
	if failedCAS.run(t.Context()); failedCAS.verdict != Invalid {
		t.Fatalf("a cas that failed on the value it expected: %s", failedCAS.verdict)
	}
	if proven(t.Context(), failedCAS, 1) {
		t.Error("proven, though one write nothing observes explains the failed cas")
	}
	if !proven(t.Context(), failedCAS, 0) {
		t.Error("not proven with no other writes")
	}
	staleRead := keyCheck{key: "k", ops: []porcupine.Operation{write, op(2, regInput{f: history.Read}, regOutput{value: "z"})}}
	if staleRead.run(t.Context()); staleRead.verdict != Invalid || !proven(t.Context(), staleRead, 5) {
		t.Errorf("a read of a value never written: %s, not proven", staleRead.verdict)
	}
}

// TestWantedBy: a segment that reads x wants the earlier cas that writes x
// and the write whose value that cas expects, not a write it never sees.
func TestWantedBy(t *testing.T) {
	open := func(f, expect, value string) porcupine.Operation {
		return porcupine.Operation{Input: regInput{key: "k", f: f, expect: expect, value: value, info: true, open: true}, Output: regOutput{}}
	}
	w, c, u := open(history.Write, "", "e"), open(history.CAS, "e", "x"), open(history.Write, "", "u")
	read := porcupine.Operation{Input: regInput{key: "k", f: history.Read}, Output: regOutput{value: "x"}}
	got := wantedBy([]porcupine.Operation{read}, []porcupine.Operation{u, w, c})
	if len(got) != 2 || got[0].Input != c.Input || got[1].Input != w.Input {
		t.Errorf("wanted %v, want the cas to x and the write of e", got)
	}
}
