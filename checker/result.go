// Package checker turns a history into verdicts: linearizability through
// porcupine, and the statistics every report shows.
package checker

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
	// Seconds is how long the check took.
	Seconds float64 `json:"seconds"`
}
