package elle

import (
	"fmt"
	"slices"
	"strings"
)

// The anomaly types. The cycles are all of items (there are no predicate
// reads here), so G-single is Adya's G-single on items, and G2-item is a
// cycle with two or more anti-dependencies, at least two of them
// adjacent; G-nonadjacent is one whose anti-dependencies never follow one
// another (snapshot isolation rules it out, though it allows G2-item).
const (
	G0            = "G0"            // a cycle of write-write dependencies
	G1a           = "G1a"           // a committed read of an aborted write
	G1b           = "G1b"           // a committed read of an intermediate write
	G1c           = "G1c"           // a cycle of ww and wr dependencies
	GSingle       = "G-single"      // a cycle with exactly one rw
	GNonadjacent  = "G-nonadjacent" // ≥2 rw, none adjacent
	G2Item        = "G2-item"       // ≥2 rw, some adjacent
	Incompatible  = "incompatible-order"
	Duplicate     = "duplicate-elements"
	Garbage       = "garbage-read"
	Internal      = "internal"
	CyclicVersion = "cyclic-versions"

	// Suffixes of cycles that need per-process or real-time order.
	ProcessSuffix  = "-process"
	RealtimeSuffix = "-realtime"
)

// cycleTypes are the base types of cycles.
var cycleTypes = []string{G0, G1c, GSingle, GNonadjacent, G2Item}

// Model is a consistency model: the anomalies it forbids, and which
// orders beyond the data dependencies it promises (and so which edges the
// graph gets).
type Model struct {
	Name string
	// Base lists the forbidden anomalies that need no order beyond data.
	Base []string
	// Process and Realtime say the model promises each process's order, or
	// real-time order (which covers process order), for the cycle types in
	// Ordered.
	Process, Realtime bool
	Ordered           []string
}

func (m Model) forbids(t string) bool {
	if slices.Contains(m.Base, t) {
		return true
	}
	for _, suf := range []string{ProcessSuffix, RealtimeSuffix} {
		if base, ok := strings.CutSuffix(t, suf); ok {
			if suf == ProcessSuffix && !m.Process && !m.Realtime || suf == RealtimeSuffix && !m.Realtime {
				return false
			}
			return slices.Contains(m.Ordered, base)
		}
	}
	return false
}

// forbidden lists every type m forbids.
func (m Model) forbidden() []string {
	out := slices.Clone(m.Base)
	for _, base := range m.Ordered {
		if m.Process {
			// A real-time model's graph has no process edges: real time
			// covers each process's order.
			out = append(out, base+ProcessSuffix)
		}
		if m.Realtime {
			out = append(out, base+RealtimeSuffix)
		}
	}
	slices.Sort(out)
	return out
}

var (
	readCommitted = []string{G0, G1a, G1b, G1c, Incompatible, Duplicate, Garbage, CyclicVersion}
	snapshot      = append(slices.Clone(readCommitted), GSingle, GNonadjacent, Internal)
	serializable  = append(slices.Clone(snapshot), G2Item)
)

// Models are the consistency models a check may be against, strongest
// first.
var Models = []Model{
	{Name: "strict-serializable", Base: serializable, Realtime: true, Ordered: cycleTypes},
	{Name: "strong-session-serializable", Base: serializable, Process: true, Ordered: cycleTypes},
	{Name: "serializable", Base: serializable},
	{Name: "snapshot-isolation", Base: snapshot},
	{Name: "read-committed", Base: readCommitted},
}

// LookupModel returns the named model; "" is strict-serializable.
func LookupModel(name string) (Model, error) {
	if name == "" {
		return Models[0], nil
	}
	var names []string
	for _, m := range Models {
		if m.Name == name {
			return m, nil
		}
		names = append(names, m.Name)
	}
	return Model{}, fmt.Errorf("unknown consistency model %q: want one of %s", name, strings.Join(names, ", "))
}
