// Package export writes a run's history in other checkers' formats, so
// that users of Jepsen's Knossos, or of porcupine, can check a faultline
// history with their own tools.
//
// Only the register workload's operations (read, write, cas) have a
// meaning both sides share; a history with other client operations is
// refused, naming the first, rather than exported half.
package export

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/faultline/faultline/history"
)

// Formats are the formats by name, as `faultline export --format` takes
// them.
var Formats = map[string]func(io.Writer, []history.Event) error{
	"jepsen":    Jepsen,
	"porcupine": Porcupine,
}

// FormatNames lists Formats in order, for help and errors.
func FormatNames() string {
	var names []string
	for n := range Formats {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// registerOnly refuses events with a client operation outside the
// register workload.
func registerOnly(events []history.Event) error {
	for i, e := range events {
		if e.Process == history.Nemesis {
			continue
		}
		switch e.F {
		case history.Read, history.Write, history.CAS:
		default:
			return fmt.Errorf("event %d: %s (process %d) is not a register operation: only the register workload (read, write, cas) can be exported", i+1, e.F, e.Process)
		}
	}
	return nil
}
