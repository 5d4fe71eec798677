package history

import (
	"fmt"
	"math"
	"slices"
)

// Op is a client operation: an invocation and its completion.
//
// Both point into the events the op was paired from, which checkers treat
// as read-only: a long history is held once, not once as events and again
// as operations.
type Op struct {
	Process Process
	F       string
	Invoke  *Event
	// Complete is the ok, fail or info event. An invocation the history
	// never completed (the harness stopped first) gets an info completion
	// at the end of time, because it may have happened.
	Complete *Event
}

// Type is the outcome of the operation.
func (o Op) Type() Type { return o.Complete.Type }

// Latency is the time from invocation to completion.
func (o Op) Latency() int64 { return o.Complete.Time - o.Invoke.Time }

// Pending reports whether the history ended before the op completed.
func (o Op) Pending() bool { return o.Complete.Time == math.MaxInt64 }

// Ops pairs each client invocation with the completion on the same process.
// Nemesis events are skipped (see Faults). A completion without an
// invocation, or a second invocation on a busy process, is an error: the
// history is malformed and no verdict drawn from it could be trusted.
// Ops points every event's missing FaultInfo and Txn at shared zero values
// (Event.Shared), so that readers of events made in memory are as safe as
// those of events read from a file.
func Ops(events []Event) ([]Op, error) {
	var ops []Op
	open := map[Process]int{} // process -> index into ops
	for i := range events {
		e := &events[i]
		e.Shared()
		if e.Process == Nemesis {
			continue
		}
		if e.Type == Invoke {
			if j, busy := open[e.Process]; busy {
				return nil, fmt.Errorf("event %d: process %d invoked %s while its %s (event time %d) was still open",
					i+1, e.Process, e.F, ops[j].F, ops[j].Invoke.Time)
			}
			open[e.Process] = len(ops)
			ops = append(ops, Op{Process: e.Process, F: e.F, Invoke: e})
			continue
		}
		j, ok := open[e.Process]
		if !ok {
			return nil, fmt.Errorf("event %d: %s completion of %s on process %d has no invocation", i+1, e.Type, e.F, e.Process)
		}
		if ops[j].F != e.F {
			return nil, fmt.Errorf("event %d: process %d completed %s but invoked %s", i+1, e.Process, e.F, ops[j].F)
		}
		ops[j].Complete = e
		delete(open, e.Process)
	}
	for _, j := range open {
		c := &Event{Type: Info, Process: ops[j].Process, F: ops[j].F, Time: math.MaxInt64,
			Error: "history ended before the operation completed"}
		c.Shared()
		ops[j].Complete = c
	}
	return ops, nil
}

// Window is one fault: when it started and when it was healed.
type Window struct {
	Fault     string   `json:"fault"`
	Nodes     []string `json:"nodes,omitempty"`
	Mechanism string   `json:"mechanism,omitempty"`
	// Effects says per member what the fault did to it (Event.Effects).
	Effects map[string]string `json:"effects,omitempty"`
	Start   int64             `json:"start"`
	// Stop is -1 when the history ends with the fault still active.
	Stop int64 `json:"stop"`
	// Recovered is when the cluster was seen whole again after the heal;
	// -1 when that was not recorded, with NotRecovered saying why if the
	// nemesis gave up waiting.
	Recovered    int64  `json:"recovered"`
	NotRecovered string `json:"not_recovered,omitempty"`
}

// Faults pairs the nemesis's start, stop and recover events into windows,
// in order of start.
func Faults(events []Event) []Window {
	var ws []Window
	// open: started, not yet stopped; healed: stopped, recovery not yet
	// recorded. Both by fault name, as a fault runs once at a time.
	open, healed := map[string]int{}, map[string]int{}
	for _, e := range events {
		if e.Process != Nemesis {
			continue
		}
		switch e.F {
		case Start:
			open[e.Fault] = len(ws)
			ws = append(ws, Window{Fault: e.Fault, Nodes: e.Nodes, Mechanism: e.Mechanism, Effects: e.Effects, Start: e.Time, Stop: -1, Recovered: -1})
		case Stop:
			if i, ok := open[e.Fault]; ok {
				ws[i].Stop = e.Time
				if e.Effects != nil {
					// What the heal found (a damaged member that refused to
					// start, say) comes on top of what the start said.
					ws[i].Effects = e.Effects
				}
				delete(open, e.Fault)
				healed[e.Fault] = i
			}
		case Recover:
			if i, ok := healed[e.Fault]; ok {
				if e.Error == "" {
					ws[i].Recovered = e.Time
				} else {
					ws[i].NotRecovered = e.Error
				}
				delete(healed, e.Fault)
			}
		}
	}
	return ws
}

// IsFinal reports whether e is the final phase's recover event: the
// cluster healed after the time limit, whole again or (Error set) not.
// A history without one ended before the run did.
func (e Event) IsFinal() bool {
	return e.Process == Nemesis && e.F == Recover && e.Fault == Final
}

// Finished reports whether events reach the end of a run: its final phase.
func Finished(events []Event) bool {
	return slices.ContainsFunc(events, Event.IsFinal)
}
