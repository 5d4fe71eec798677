package export

import (
	"bufio"
	"encoding/json"
	"io"

	"github.com/faultline/faultline/history"
)

// PorcupineOp is one operation as porcupine.Operation holds it, in JSON:
// ClientId is the process, Call and Return are nanoseconds since the test
// began. Decode a file into []PorcupineOp and copy the fields into
// porcupine.Operation values; partition by Input.Key.
type PorcupineOp struct {
	ClientId int             `json:"ClientId"`
	Input    PorcupineInput  `json:"Input"`
	Call     int64           `json:"Call"`
	Output   PorcupineOutput `json:"Output"`
	Return   int64           `json:"Return"`
}

// PorcupineInput is what an operation asked: F is read, write or cas;
// Value is what a write or cas writes, Expect what a cas compares with.
type PorcupineInput struct {
	Key    string `json:"key"`
	F      string `json:"f"`
	Value  string `json:"value,omitempty"`
	Expect string `json:"expect,omitempty"`
}

// PorcupineOutput is what came back: the value a read returned ("" for
// none), whether a cas found Expect. Unknown marks an operation whose
// outcome is unknown (info, or never completed): its Return is after every
// other event, so a model that lets it take effect or not, as it finds
// the state, may place it anywhere after its Call, as faultline's own
// register check does.
type PorcupineOutput struct {
	Value     string `json:"value,omitempty"`
	Succeeded bool   `json:"succeeded,omitempty"`
	Unknown   bool   `json:"unknown,omitempty"`
}

// Porcupine writes the register operations of events as a JSON array of
// PorcupineOp, one per line, in order of invocation. Failed operations
// certainly did not happen and are left out; the nemesis's events are not
// operations and are left out too.
func Porcupine(w io.Writer, events []history.Event) error {
	if err := registerOnly(events); err != nil {
		return err
	}
	ops, err := history.Ops(events)
	if err != nil {
		return err
	}
	var end int64
	for _, e := range events {
		end = max(end, e.Time)
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("[")
	n := 0
	for _, op := range ops {
		if op.Type() == history.Fail {
			continue
		}
		p := PorcupineOp{
			ClientId: int(op.Process),
			Input:    PorcupineInput{Key: op.Invoke.Key, F: op.F, Value: op.Invoke.Value, Expect: op.Invoke.Expect},
			Call:     op.Invoke.Time,
			Output:   PorcupineOutput{Value: op.Complete.Value, Succeeded: op.Complete.Succeeded},
			Return:   op.Complete.Time,
		}
		if op.Type() != history.OK {
			p.Output = PorcupineOutput{Unknown: true}
			p.Return = end + 1
		}
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		if n > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n")
		bw.Write(b)
		n++
	}
	bw.WriteString("\n]\n")
	return bw.Flush()
}
