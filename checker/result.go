// Package checker turns a history into verdicts and the statistics every
// report shows.
//
// Every checker is a Func: it reads one Input (the history, its fault
// windows, where the run's files are) and returns one Result. There is one
// per workload (linearizability of the register and kv workloads through
// porcupine, watch, kubernetes and lease guarantees), each in its own file
// with the operation names it gives meaning to, and the RunChecks every
// run gets (recovery, members-agree, logs). A checker that runs out of
// time, or has nothing to judge, says unknown, never valid.
package checker

import (
	"fmt"

	"github.com/faultline/faultline/history"
)

// Verdict is a checker's conclusion about a history.
type Verdict string

const (
	Valid   Verdict = "valid"
	Invalid Verdict = "invalid"
	// Unknown means the checker could not decide, for example because it
	// ran out of time. It is never to be read as valid.
	Unknown Verdict = "unknown"
)

// Worst combines verdicts: any invalid makes the whole invalid, otherwise
// any unknown makes it unknown.
func Worst(vs ...Verdict) Verdict {
	out := Valid
	for _, v := range vs {
		switch {
		case v == Invalid:
			return Invalid
		case v != Valid:
			out = Unknown
		}
	}
	return out
}

// Result is what one checker concluded.
type Result struct {
	Checker string  `json:"checker"`
	Verdict Verdict `json:"verdict"`
	// Summary says in words what was found.
	Summary string `json:"summary"`
	// Anomalies name the evidence: which keys, which operations.
	Anomalies []string `json:"anomalies,omitempty"`
	// Visualization is the file, relative to the run directory, holding
	// porcupine's view of the failing partitions.
	Visualization string `json:"visualization,omitempty"`
	// Resolved counts, for the kv and register checks, how the writes of
	// unknown outcome were resolved from the commit log; nil when they
	// were not (none, or resolution switched off).
	Resolved *Resolved `json:"resolved,omitempty"`
	// Seconds is how long the check took.
	Seconds float64 `json:"seconds"`
}

// nothingToCheck says why a checker has nothing to judge: the history holds
// no operation of its workload (is picks them by name), or none that
// completed ok. Failed operations did not happen and info ones may never
// have, so neither can break a guarantee on its own: calling such a history
// valid would pass a run in which the workload never reached the store. It
// returns "" when there is something to check.
func nothingToCheck(ops []history.Op, workload string, is func(f string) bool) string {
	var n, ok int
	for _, op := range ops {
		if is(op.F) {
			n++
			if op.Type() == history.OK {
				ok++
			}
		}
	}
	switch {
	case n == 0:
		return fmt.Sprintf("no %s operations in the history: nothing to check", workload)
	case ok == 0:
		return fmt.Sprintf("none of %s completed ok: nothing to check", plural(n, workload+" operation"))
	}
	return ""
}
