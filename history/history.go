// Package history is the operation record shared by workloads, nemesis,
// checkers and reports.
//
// It follows Jepsen's event model: every operation is an invoke event
// followed, on the same process, by exactly one completion: ok (it
// happened), fail (it certainly did not happen) or info (unknown: it may
// have happened, at any time after its invocation). A process that got an
// info never issues another operation; its worker continues under a new
// process id.
package history

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Type is the kind of an event.
type Type string

const (
	Invoke Type = "invoke"
	OK     Type = "ok"
	Fail   Type = "fail"
	Info   Type = "info"
)

// Process identifies who issued an event: a worker's current process id,
// or the nemesis.
type Process int

// Nemesis is the process of every fault event.
const Nemesis Process = -1

// MarshalJSON writes the nemesis as "nemesis", as Jepsen does, and workers
// as plain numbers.
func (p Process) MarshalJSON() ([]byte, error) {
	if p == Nemesis {
		return []byte(`"nemesis"`), nil
	}
	return strconv.AppendInt(nil, int64(p), 10), nil
}

// UnmarshalJSON accepts what MarshalJSON writes.
func (p *Process) UnmarshalJSON(b []byte) error {
	if string(b) == `"nemesis"` {
		*p = Nemesis
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("process %s: want a non-negative number or \"nemesis\"", b)
	}
	*p = Process(n)
	return nil
}

// Operation names used by the register workload and the kill nemesis.
const (
	Read  = "read"
	Write = "write"
	CAS   = "cas"

	// Fault events carry the fault's name in Fault and use these as F.
	Start = "start"
	Stop  = "stop"
)

// Event is one line of history.jsonl.
//
// Arguments are set on the invoke event; results on the completion. Time
// is nanoseconds since the start of the test on a monotonic clock.
type Event struct {
	Type    Type    `json:"type"`
	Process Process `json:"process"`
	F       string  `json:"f"`
	Time    int64   `json:"time"`

	// Arguments and results of client operations.
	Key string `json:"key,omitempty"`
	// Value is the value written (invoke of write and cas) or read (ok of
	// read; empty when the key does not exist).
	Value string `json:"value,omitempty"`
	// Expect is the value a cas compares against.
	Expect string `json:"expect,omitempty"`
	// Succeeded reports whether a completed cas found Expect and wrote.
	Succeeded bool `json:"succeeded,omitempty"`
	// Revision is the store revision in the response header.
	Revision int64  `json:"revision,omitempty"`
	Error    string `json:"error,omitempty"`
	// Member names the member that served the operation, when known.
	Member string `json:"member,omitempty"`

	// Fault and Nodes describe nemesis events: which fault, which members.
	Fault string   `json:"fault,omitempty"`
	Nodes []string `json:"nodes,omitempty"`
}

// MarshalLine encodes e as one JSON line.
func (e Event) MarshalLine() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
