package history

import (
	"math"
	"strings"
	"testing"
)

func TestOps(t *testing.T) {
	events := []Event{
		{Type: Invoke, Process: 0, F: Write, Time: 1, Key: "k", Value: "a"},
		{Type: Invoke, Process: 1, F: Read, Time: 2, Key: "k"},
		{Type: Info, Process: Nemesis, F: Start, Time: 3, FaultInfo: &FaultInfo{Fault: "kill-leader"}},
		{Type: OK, Process: 1, F: Read, Time: 4, Value: "a"},
		{Type: Info, Process: 0, F: Write, Time: 5, Error: "timeout"},
		{Type: Invoke, Process: 2, F: CAS, Time: 6, Key: "k", Expect: "a", Value: "b"},
	}
	ops, err := Ops(events)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 3 {
		t.Fatalf("%d ops, want 3 (the nemesis is no client)", len(ops))
	}
	if ops[0].Type() != Info || ops[0].Latency() != 4 || ops[1].Complete.Value != "a" {
		t.Errorf("paired wrongly: %+v", ops[:2])
	}
	// The harness stopped before the cas completed: it may have happened.
	if !ops[2].Pending() || ops[2].Type() != Info || ops[2].Complete.Time != math.MaxInt64 {
		t.Errorf("unfinished cas: %+v", ops[2])
	}
}

func TestOpsMalformed(t *testing.T) {
	for _, tc := range []struct {
		events []Event
		want   string
	}{
		{[]Event{{Type: OK, Process: 0, F: Read}}, "has no invocation"},
		{[]Event{{Type: Invoke, Process: 0, F: Read}, {Type: Invoke, Process: 0, F: Write}}, "still open"},
		{[]Event{{Type: Invoke, Process: 0, F: Read}, {Type: OK, Process: 0, F: Write}}, "completed write but invoked read"},
	} {
		if _, err := Ops(tc.events); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.events, err, tc.want)
		}
	}
}

func TestFaults(t *testing.T) {
	nem := func(f string, at int64, fault, err string) Event {
		return Event{Type: Info, Process: Nemesis, F: f, Time: at, FaultInfo: &FaultInfo{Fault: fault, Nodes: []string{"n1"}}, Error: err}
	}
	partition := nem(Start, 30, "pause-leader", "")
	partition.Mechanism = "docker pause"
	ws := Faults([]Event{
		nem(Start, 10, "kill-leader", ""),
		nem(Stop, 20, "kill-leader", ""),
		nem(Recover, 25, "kill-leader", ""),
		partition,
		nem(Stop, 40, "pause-leader", ""),
		nem(Recover, 90, "pause-leader", "not recovered 50.0s after the heal"),
		nem(Start, 100, "kill-leader", ""),
		nem(Recover, 101, "final", ""),
	})
	want := []Window{
		{Fault: "kill-leader", Start: 10, Stop: 20, Recovered: 25},
		{Fault: "pause-leader", Mechanism: "docker pause", Start: 30, Stop: 40, Recovered: -1, NotRecovered: "not recovered 50.0s after the heal"},
		{Fault: "kill-leader", Start: 100, Stop: -1, Recovered: -1},
	}
	if len(ws) != len(want) {
		t.Fatalf("windows %+v", ws)
	}
	for i := range want {
		w := ws[i]
		if w.Fault != want[i].Fault || w.Mechanism != want[i].Mechanism || w.Start != want[i].Start || w.Stop != want[i].Stop ||
			w.Recovered != want[i].Recovered || w.NotRecovered != want[i].NotRecovered {
			t.Errorf("window %d = %+v, want %+v", i, w, want[i])
		}
	}
}

func TestDecode(t *testing.T) {
	good := `{"type":"invoke","process":3,"f":"read","time":1,"key":"k"}
{"type":"info","process":"nemesis","f":"start","time":2,"fault":"kill-leader"}
{"type":"ok","process":3,"f":"re`
	events, err := Decode(strings.NewReader(good))
	if err != nil {
		t.Fatalf("a torn last line must be dropped, not fail: %v", err)
	}
	if len(events) != 2 || events[1].Process != Nemesis {
		t.Fatalf("events %+v", events)
	}
	// A bad line before the last is no torn tail: the history is corrupt.
	last := "\n" + `{"type":"ok","process":1,"f":"read"}`
	for _, bad := range []string{
		`not json`,
		`{"type":"maybe","process":1,"f":"read"}`,
		`{"type":"ok","process":-4,"f":"read"}`,
		`{"type":"ok","process":1}`,
	} {
		if _, err := Decode(strings.NewReader(bad + last)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: error %v, want one naming line 1", bad, err)
		}
	}
}
