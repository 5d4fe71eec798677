// Package elle checks histories of transactions the way Jepsen's Elle
// does: it infers from what the transactions read the order in which each
// key's versions were installed, builds the graph of dependencies between
// transactions (Adya's ww, wr and rw, plus real-time and per-process
// order), and explains every cycle in it as a named anomaly (G0, G1c,
// G-single, G2-item …), together with the anomalies that need no cycle
// (aborted and intermediate reads, incompatible orders, duplicate
// elements, reads of values nobody wrote).
//
// Two kinds of history are understood. In a list-append history each key
// holds a list, transactions append unique elements to it and read it
// whole: a read of [1 2 3] proves the key went [] → [1] → [1 2] → [1 2 3],
// so the version order is known exactly. In a register history (rw
// register, "wr") transactions write unique values and read them; the
// order is only partly known (every key starts absent; a transaction that
// read v and then wrote v' put v' after v).
//
// A transaction of unknown outcome (info) is taken as Elle takes it: its
// writes may or may not have happened, so they constrain nothing until a
// committed read observes them, and its reads tell nothing. One graph is
// built that holds in every way the unknown transactions could have gone,
// so unknown outcomes cost nothing in search.
//
// The package is pure: it reads Txns and returns a Report; rendering the
// evidence as text or SVG is in explain.go and svg.go.
package elle

import (
	"fmt"
	"slices"
	"strings"
)

// Kind is what one micro-operation does.
type Kind uint8

const (
	// Append adds Value to the end of Key's list.
	Append Kind = iota + 1
	// Read reads Key: its list (list-append) or its value (register).
	Read
	// Write sets the register Key to Value.
	Write
)

// Mop is one micro-operation of a transaction.
type Mop struct {
	Kind Kind
	Key  string
	// Value is the element appended, the value written, or (a register
	// read) the value read; 0 means the key had no value. Written values
	// must be unique per key and not 0.
	Value int64
	// List is what a list-append read returned, oldest element first.
	List []int64
}

// Status is a transaction's outcome.
type Status uint8

const (
	// OK: it committed, and its reads are what it saw.
	OK Status = iota + 1
	// Info: unknown; it may have committed, and its reads are unknown.
	Info
	// Fail: it certainly did not commit.
	Fail
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Info:
		return "info"
	case Fail:
		return "fail"
	}
	return "?"
}

// Txn is one transaction as the history recorded it.
type Txn struct {
	// ID names the transaction in the evidence (T<ID>); callers use the
	// operation's place in the history.
	ID      int
	Process int
	Status  Status
	// Invoke and Complete are when it was invoked and completed
	// (nanoseconds); Complete matters only for an ok transaction.
	Invoke, Complete int64
	Mops             []Mop
}

// Workload says how the Txns' mops are to be read.
type Workload uint8

const (
	ListAppend Workload = iota + 1
	Register
)

// Options choose what a check is against.
type Options struct {
	Workload Workload
	// Model is a consistency model's name (Models); "" means
	// strict-serializable.
	Model string
	// Budget bounds the edges one cycle search may walk inside one
	// strongly connected component; 0 means a default. A search that runs
	// out may miss an anomaly, which makes an otherwise clean verdict
	// unknown.
	Budget int
	// Stop, when set, is asked between components whether to give up (the
	// caller's time is up); the cycles not yet searched make an otherwise
	// clean verdict unknown.
	Stop func() bool
	// MaxShown bounds the anomalies of each type that carry their full
	// evidence; the others are only counted. 0 means 8.
	MaxShown int
}

// Anomaly is one thing found.
type Anomaly struct {
	Type string
	// Forbidden says whether the model checked against rules it out.
	Forbidden bool
	// Txns are the transactions involved (indexes into the input), in
	// cycle order for a cycle.
	Txns []int
	// Steps are a cycle's edges, Steps[i] from Txns[i] to Txns[i+1] (the
	// last back to Txns[0]); nil for an anomaly that is not a cycle.
	Steps []Step
	// Key is the key of an anomaly that is not a cycle.
	Key string
	// Why says in words what is wrong.
	Why string
}

// Step is one edge of a cycle and why it exists.
type Step struct {
	From, To int
	Rel      Rel
	Key      string
	Why      string
}

// Report is the outcome of a check.
type Report struct {
	Model string
	// Forbidden lists the anomaly types the model rules out.
	Forbidden []string
	// Counts is how many of each type were found (the cycles are counted
	// once per strongly connected component and type).
	Counts map[string]int
	// Anomalies carry evidence, at most MaxShown of each type.
	Anomalies []Anomaly
	// Valid: no forbidden anomaly. Unknown, when not "", says why no
	// verdict could be given (then Valid is false).
	Valid   bool
	Unknown string
	// What was checked.
	Txns, OK, Info, Fail, Keys int
	// SCCs is the number of strongly connected components of more than
	// one transaction; Truncated counts searches that ran out of budget.
	SCCs, Truncated int
	// Stopped counts the components left unsearched when Stop said so.
	Stopped int
	Edges   int
}

// Found lists the anomaly types found, forbidden ones first, each
// alphabetically.
func (r *Report) Found() []string {
	var out []string
	for t := range r.Counts {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b string) int {
		fa, fb := slices.Contains(r.Forbidden, a), slices.Contains(r.Forbidden, b)
		if fa != fb {
			if fa {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return out
}

// Check checks txns against opts.Model.
func Check(txns []Txn, opts Options) (*Report, error) {
	m, err := LookupModel(opts.Model)
	if err != nil {
		return nil, err
	}
	if opts.Budget <= 0 {
		opts.Budget = 4_000_000
	}
	if opts.MaxShown <= 0 {
		opts.MaxShown = 8
	}
	c := &checker{txns: txns, opts: opts, model: m, rep: &Report{Model: m.Name, Forbidden: m.forbidden(), Counts: map[string]int{}}}
	for _, t := range txns {
		switch t.Status {
		case OK:
			c.rep.OK++
		case Info:
			c.rep.Info++
		case Fail:
			c.rep.Fail++
		default:
			return nil, fmt.Errorf("txn %d: status %d is not ok, info or fail", t.ID, t.Status)
		}
	}
	c.rep.Txns = len(txns)
	switch opts.Workload {
	case ListAppend:
		err = c.inferAppend()
	case Register:
		err = c.inferRegister()
	default:
		err = fmt.Errorf("workload %d: want ListAppend or Register", opts.Workload)
	}
	if err != nil {
		return nil, err
	}
	if m.Process {
		c.processEdges()
	}
	if m.Realtime {
		c.realtimeEdges()
	}
	c.g = buildGraph(len(txns), c.edges)
	c.edges = nil
	c.rep.Edges = c.g.edgeCount()
	c.searchCycles()
	c.verdict()
	return c.rep, nil
}

// verdict sets Valid and Unknown from what was found.
func (c *checker) verdict() {
	r := c.rep
	for t := range r.Counts {
		if slices.Contains(r.Forbidden, t) {
			r.Valid = false
			return
		}
	}
	switch {
	case r.OK == 0:
		r.Unknown = "no transaction committed: nothing to check"
	case r.Stopped > 0:
		r.Unknown = fmt.Sprintf("stopped before searching %d of %d strongly connected components", r.Stopped, r.SCCs)
	case r.Truncated > 0:
		r.Unknown = fmt.Sprintf("%d cycle searches ran out of budget; a forbidden cycle may have been missed", r.Truncated)
	default:
		r.Valid = true
	}
}

// add records an anomaly: counted always, kept with its evidence while
// fewer than MaxShown of its type are.
func (c *checker) add(a Anomaly) {
	c.rep.Counts[a.Type]++
	if c.rep.Counts[a.Type] > c.opts.MaxShown {
		return
	}
	a.Forbidden = c.model.forbids(a.Type)
	c.rep.Anomalies = append(c.rep.Anomalies, a)
}
