package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

// registerRun is the small real run of the reports' fixture (the register
// workload on 3 etcd members, the leader killed twice), read by the
// history reader, with what it happens not to hold added: a failed write
// of a key and value that need escaping, and a read the history never
// completed.
func registerRun(t *testing.T) []history.Event {
	t.Helper()
	events, err := history.ReadFile(filepath.Join("..", "reports", "testdata", "smallrun", rundir.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	end := events[len(events)-1].Time
	odd, val := "k\"\\ é", "v\n\t\x01→"
	events = append(events,
		history.Event{Type: history.Invoke, Process: 98, F: history.Write, Time: end + 1, Key: odd, Value: val},
		history.Event{Type: history.Fail, Process: 98, F: history.Write, Time: end + 2, Key: odd, Error: "etcdserver: too many requests", Member: "n3"},
		history.Event{Type: history.Invoke, Process: 99, F: history.Read, Time: end + 3, Key: "k1.0"},
	)
	for i := range events {
		events[i].Shared()
	}
	return events
}

// TestJepsenRoundTrip writes a register history as Jepsen EDN, reads it
// back with an EDN reader, turns Jepsen's conventions back into
// faultline's, and gets every event the history reader read.
func TestJepsenRoundTrip(t *testing.T) {
	events := registerRun(t)
	var buf bytes.Buffer
	if err := Jepsen(&buf, events); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != len(events) {
		t.Fatalf("%d lines, want one per event: %d", n, len(events))
	}
	forms, err := readEDN(buf.String())
	if err != nil {
		t.Fatalf("the export is not EDN: %v", err)
	}
	if len(forms) != len(events) {
		t.Fatalf("%d maps read back, want %d", len(forms), len(events))
	}
	mismatches := 0
	for i, f := range forms {
		m, ok := f.(map[any]any)
		if !ok {
			t.Fatalf("form %d is %T, not a map", i, f)
		}
		if m[keywordV(":index")] != int64(i) {
			t.Errorf("form %d has :index %v", i, m[keywordV(":index")])
		}
		if m[keywordV(":error")] == keywordV(Mismatch) {
			mismatches++
		}
		got, err := fromJepsen(m)
		if err != nil {
			t.Fatalf("form %d: %v: %s", i, err, strings.Split(buf.String(), "\n")[i])
		}
		got.Shared()
		if !reflect.DeepEqual(got, events[i]) {
			t.Errorf("event %d read back as\n%+v\nwant\n%+v", i, got, events[i])
		}
	}
	if mismatches == 0 {
		t.Error("the fixture's cas that found another value should be :fail with :error :mismatch")
	}
}

// fromJepsen is one event of a Jepsen history, as faultline records it.
func fromJepsen(m map[any]any) (history.Event, error) {
	kw := func(k string) any { return m[keywordV(k)] }
	str := func(k string) string { s, _ := kw(k).(string); return s }
	num := func(k string) int64 { n, _ := kw(k).(int64); return n }
	strs := func(k string) []string {
		var out []string
		for _, s := range asSlice(kw(k)) {
			out = append(out, s.(string))
		}
		return out
	}
	typ, _ := kw(":type").(keywordV)
	f, _ := kw(":f").(keywordV)
	e := history.Event{Type: history.Type(strings.TrimPrefix(string(typ), ":")), F: strings.TrimPrefix(string(f), ":"),
		Time: num(":time"), Revision: num(":revision"), Member: str(":member"), Error: str(":error")}
	if kw(":process") == keywordV(":nemesis") {
		e.Process = history.Nemesis
		e.FaultInfo = &history.FaultInfo{}
		e.Fault, e.Mechanism, e.Term, e.Hash = str(":fault"), str(":mechanism"), uint64(num(":term")), uint32(num(":hash"))
		e.Nodes, e.Crash, e.Damaged = strs(":nodes"), strs(":crash"), strs(":damaged")
		if em, ok := kw(":effects").(map[any]any); ok {
			e.Effects = map[string]string{}
			for k, v := range em {
				e.Effects[k.(string)] = v.(string)
			}
		}
		return e, nil
	}
	e.Process = history.Process(num(":process"))
	tuple := asSlice(kw(":value"))
	if len(tuple) != 2 {
		return e, fmt.Errorf("value %v is not a [key value] tuple", kw(":value"))
	}
	e.Key = tuple[0].(string)
	v := tuple[1]
	switch {
	case e.Type == history.Invoke && e.F == history.Write:
		e.Value = v.(string)
	case e.Type == history.Invoke && e.F == history.CAS:
		pair := asSlice(v)
		e.Expect, _ = pair[0].(string) // nil: the key must not exist
		e.Value = pair[1].(string)
	case e.Type == history.OK && e.F == history.Read && v != nil:
		e.Value = v.(string)
	}
	// A cas that found another value is Jepsen's fail, faultline's ok.
	if kw(":error") == keywordV(Mismatch) {
		e.Type = history.OK
	} else if e.Type == history.OK && e.F == history.CAS {
		e.Succeeded = true
	}
	return e, nil
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// TestPorcupineOps writes a register history as porcupine operations,
// decodes them as a porcupine user would, and checks them with porcupine:
// linearizable as recorded, and not once a read answers a value nobody
// wrote.
func TestPorcupineOps(t *testing.T) {
	events := registerRun(t)
	var buf bytes.Buffer
	if err := Porcupine(&buf, events); err != nil {
		t.Fatal(err)
	}
	var ops []PorcupineOp
	if err := json.Unmarshal(buf.Bytes(), &ops); err != nil {
		t.Fatalf("the export is not a JSON array of operations: %v", err)
	}
	hops, err := history.Ops(events)
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	for _, e := range events {
		end = max(end, e.Time)
	}
	var want []history.Op
	for _, op := range hops {
		if op.Type() != history.Fail {
			want = append(want, op)
		}
	}
	if len(ops) != len(want) {
		t.Fatalf("%d operations, want %d (every one but the failed)", len(ops), len(want))
	}
	unknown := 0
	for i, op := range ops {
		h := want[i]
		if op.ClientId != int(h.Process) || op.Call != h.Invoke.Time || op.Input.Key != h.Invoke.Key || op.Input.F != h.F {
			t.Errorf("operation %d is %+v, want %s of %q by process %d at %d", i, op, h.F, h.Invoke.Key, h.Process, h.Invoke.Time)
		}
		if op.Output.Unknown != (h.Type() != history.OK) {
			t.Errorf("operation %d: unknown %t, but its outcome is %s", i, op.Output.Unknown, h.Type())
		}
		if op.Output.Unknown {
			unknown++
			if op.Return <= end {
				t.Errorf("operation %d of unknown outcome returns at %d, not after every event (%d)", i, op.Return, end)
			}
		}
	}
	if unknown < 2 {
		t.Errorf("%d operations of unknown outcome; the fixture has timeouts and a pending read", unknown)
	}
	if !porcupine.CheckOperations(registerModel(), porcupineOps(ops)) {
		t.Error("porcupine finds the exported history not linearizable; faultline found it linearizable")
	}
	for i := range ops {
		if ops[i].Input.F == history.Read && !ops[i].Output.Unknown {
			ops[i].Output.Value = "never-written"
			break
		}
	}
	if porcupine.CheckOperations(registerModel(), porcupineOps(ops)) {
		t.Error("porcupine finds a read of a value nobody wrote linearizable")
	}
}

func porcupineOps(ops []PorcupineOp) []porcupine.Operation {
	var out []porcupine.Operation
	for _, op := range ops {
		out = append(out, porcupine.Operation{ClientId: op.ClientId, Input: op.Input, Call: op.Call, Output: op.Output, Return: op.Return})
	}
	return out
}

// registerModel is what a porcupine user would write for these
// operations: one register per key; an operation of unknown outcome takes
// effect where it can.
func registerModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range ops {
				k := op.Input.(PorcupineInput).Key
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			var parts [][]porcupine.Operation
			for _, k := range keys {
				parts = append(parts, byKey[k])
			}
			return parts
		},
		Init: func() any { return "" },
		Step: func(state, input, output any) (bool, any) {
			s, in, out := state.(string), input.(PorcupineInput), output.(PorcupineOutput)
			switch {
			case in.F == history.Read:
				return out.Unknown || out.Value == s, s
			case in.F == history.Write:
				return true, in.Value
			case s == in.Expect && (out.Succeeded || out.Unknown):
				return true, in.Value
			default:
				return !out.Succeeded, s
			}
		},
	}
}

// Only the register workload exports: another operation is named.
func TestExportRefusesOtherWorkloads(t *testing.T) {
	events := []history.Event{
		{Type: history.Invoke, Process: 0, F: history.Read, Key: "k"},
		{Type: history.OK, Process: 0, F: history.Read, Key: "k"},
		{Type: history.Invoke, Process: 1, F: "kv-put", Key: "k"},
	}
	for name, format := range Formats {
		err := format(&bytes.Buffer{}, events)
		if err == nil || !strings.Contains(err.Error(), "kv-put (process 1) is not a register operation") {
			t.Errorf("%s: error %v, want one naming kv-put", name, err)
		}
	}
}
