package nemesis

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

func mustParse(t *testing.T, spec string) Fault {
	t.Helper()
	fs, err := Parse(spec)
	if err != nil || len(fs) != 1 {
		t.Fatalf("%s: %v %v", spec, fs, err)
	}
	return fs[0]
}

func decode(t *testing.T, buf *bytes.Buffer) []history.Event {
	t.Helper()
	events, err := history.Decode(buf)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// TestScheduleStepsOnce: the steps run in order, each after its quiet and
// for its length; without Repeat, Run returns after the last step's
// recovery and leaves nothing behind.
func TestScheduleStepsOnce(t *testing.T) {
	c := newFake(3)
	ms := time.Millisecond
	// Distinct lengths: any mix-up of the steps' windows makes some window
	// shorter than its step asks.
	steps := []Step{
		{Fault: mustParse(t, "kill-leader"), Quiet: 40 * ms, For: 30 * ms},
		{Fault: mustParse(t, "pause-random"), Quiet: 10 * ms, For: 90 * ms},
		{Fault: mustParse(t, "kill-random+pause-leader"), Quiet: 70 * ms, For: 60 * ms},
	}
	var buf bytes.Buffer
	n := &Nemesis{Schedule: Schedule{Steps: steps}, Cluster: c, Recorder: history.NewRecorder(&buf)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("Run of a schedule that does not repeat went on until the time limit")
	}
	events := decode(t, &buf)
	ws := history.Faults(events)
	if len(ws) != len(steps) || n.Count() != len(steps) {
		t.Fatalf("%d windows, count %d, want one per step: %+v", len(ws), n.Count(), ws)
	}
	var lastStop int64
	for i, w := range ws {
		st := steps[i]
		if w.Fault != st.Fault.Name() {
			t.Errorf("window %d is %s, want %s", i, w.Fault, st.Fault.Name())
		}
		if w.Stop-w.Start < int64(st.For) {
			t.Errorf("window %d (%s) lasted %s, want at least %s", i, w.Fault, time.Duration(w.Stop-w.Start), st.For)
		}
		if w.Start-lastStop < int64(st.Quiet) {
			t.Errorf("window %d (%s) came %s after the one before, want at least %s of quiet", i, w.Fault, time.Duration(w.Start-lastStop), st.Quiet)
		}
		if w.Recovered < w.Stop {
			t.Errorf("window %d (%s): no recovery recorded: %+v", i, w.Fault, w)
		}
		lastStop = w.Stop
	}
	if left, err := Leftovers(context.Background(), c); err != nil || len(left) > 0 {
		t.Fatalf("left behind: %v %v", left, err)
	}
}

// TestScheduleRepeats: with Repeat the steps start over after the last,
// until the run ends.
func TestScheduleRepeats(t *testing.T) {
	c := newFake(3)
	steps := []Step{
		{Fault: mustParse(t, "kill-leader"), Quiet: 10 * time.Millisecond, For: 20 * time.Millisecond},
		{Fault: mustParse(t, "pause-random"), Quiet: 10 * time.Millisecond, For: 20 * time.Millisecond},
	}
	var buf bytes.Buffer
	n := &Nemesis{Schedule: Schedule{Steps: steps, Repeat: true, Jitter: DefaultJitter}, Cluster: c, Recorder: history.NewRecorder(&buf)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	if _, err := waitFor(ctx, time.Minute, func() (bool, error) { return n.Count() >= 5, nil }); err != nil {
		t.Fatalf("%d faults started, want the steps to go round at least twice: %v", n.Count(), err)
	}
	cancel()
	<-done
	ws := history.Faults(decode(t, &buf))
	for i, w := range ws {
		if want := steps[i%2].Fault.Name(); w.Fault != want {
			t.Errorf("window %d is %s, want %s", i, w.Fault, want)
		}
	}
	if left, err := Leftovers(context.Background(), c); err != nil || len(left) > 0 {
		t.Fatalf("left behind: %v %v", left, err)
	}
}

// TestScheduleInterrupted: a run that ends in the middle of a step heals
// the fault before Run returns and closes its window.
func TestScheduleInterrupted(t *testing.T) {
	c := newFake(3)
	steps := []Step{{Fault: mustParse(t, "pause-leader+kill-random"), Quiet: 10 * time.Millisecond, For: time.Hour}}
	var buf bytes.Buffer
	n := &Nemesis{Schedule: Schedule{Steps: steps}, Cluster: c, Recorder: history.NewRecorder(&buf)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	if _, err := waitFor(context.Background(), time.Minute, func() (bool, error) { return n.Count() == 1, nil }); err != nil {
		t.Fatal("the fault never started")
	}
	cancel()
	<-done
	if left, err := Leftovers(context.Background(), c); err != nil || len(left) > 0 {
		t.Fatalf("left behind after an interrupted run: %v %v", left, err)
	}
	if ws := history.Faults(decode(t, &buf)); len(ws) != 1 || ws[0].Stop < ws[0].Start {
		t.Fatalf("windows %+v, want one, closed", ws)
	}
}

// TestSeedRepeatsSchedule: two runs whose Rand has the same seed hit the
// same members and split them the same way, with the same window lengths;
// another seed makes other choices.
func TestSeedRepeatsSchedule(t *testing.T) {
	type window struct {
		nodes  string
		length time.Duration
	}
	run := func(seed uint64) []window {
		t.Helper()
		var steps []Step
		for range 4 {
			steps = append(steps,
				Step{Fault: mustParse(t, "kill-random"), Quiet: 5 * time.Millisecond, For: 100 * time.Millisecond},
				Step{Fault: mustParse(t, "partition-halves"), Quiet: 5 * time.Millisecond, For: 100 * time.Millisecond})
		}
		var buf bytes.Buffer
		n := &Nemesis{Schedule: Schedule{Steps: steps, Jitter: 0.5}, Cluster: newFake(5), Recorder: history.NewRecorder(&buf),
			Rand: rand.New(rand.NewPCG(seed, 0))}
		n.Run(context.Background())
		var out []window
		for _, w := range history.Faults(decode(t, &buf)) {
			out = append(out, window{strings.Join(w.Nodes, ","), time.Duration(w.Stop - w.Start)})
		}
		if len(out) != len(steps) {
			t.Fatalf("seed %d: %d windows, want %d: %+v", seed, len(out), len(steps), out)
		}
		return out
	}
	a, b, other := run(7), run(7), run(8)
	// Jitter 0.5 spreads each window over 50ms to 150ms; timers add a
	// little of their own.
	const slack = 25 * time.Millisecond
	for i := range a {
		if a[i].nodes != b[i].nodes {
			t.Errorf("window %d hit %s, then %s with the same seed", i, a[i].nodes, b[i].nodes)
		}
		if d := a[i].length - b[i].length; d > slack || d < -slack {
			t.Errorf("window %d lasted %s, then %s with the same seed", i, a[i].length, b[i].length)
		}
	}
	if slices.EqualFunc(a, other, func(x, y window) bool { return x.nodes == y.nodes }) {
		t.Errorf("seeds 7 and 8 hit the same members in every window: %+v", a)
	}
}
