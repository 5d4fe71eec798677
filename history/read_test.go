package history

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// TestFootprint: the estimate is near what reading the history and pairing
// its operations hold, for a history of small events and for one of watch
// responses, which hold several times as much per line.
func TestFootprint(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   func(i int) Event
	}{
		{"reads", func(i int) Event {
			return Event{Type: OK, F: Read, Key: "k3", Value: fmt.Sprintf("v%d", i), Revision: int64(i)}
		}},
		{"watch responses", func(i int) Event {
			kv := func(v int) KV {
				return KV{Key: "/watch/k1", Value: fmt.Sprintf("v100051-%d", v), CreateRevision: 9, ModRevision: int64(v), Version: 3}
			}
			ev := func(v int) WatchEvent { prev := kv(v - 1); return WatchEvent{Type: "put", KV: kv(v), PrevKV: &prev} }
			return Event{Type: OK, F: "watch-recv", Member: "n2", WatchID: "pinned-n2", Revision: int64(i), WatchEvents: []WatchEvent{ev(i), ev(i + 1)}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.jsonl")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			w := bufio.NewWriter(f)
			const n = 50_000
			for i := range n {
				inv, done := tc.ok(i), tc.ok(i)
				inv.Type, inv.Value, inv.WatchEvents = Invoke, "", nil
				for _, e := range []Event{inv, done} {
					e.Process, e.Time = Process(i%7), int64(i)
					line, err := e.MarshalLine()
					if err != nil {
						t.Fatal(err)
					}
					w.Write(line)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			est, err := Footprint(path)
			if err != nil {
				t.Fatal(err)
			}
			before := heapAlloc()
			events, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ops, err := Ops(events)
			if err != nil {
				t.Fatal(err)
			}
			held := heapAlloc() - before
			runtime.KeepAlive(ops)
			if ratio := float64(est) / float64(held); ratio < 0.8 || ratio > 1.5 {
				t.Errorf("estimated %d MiB, held %d MiB (ratio %.2f), want within 0.8-1.5", est>>20, held>>20, ratio)
			} else {
				t.Logf("estimated %d MiB, held %d MiB (ratio %.2f)", est>>20, held>>20, ratio)
			}
		})
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestDecodeShared: an event read without the nemesis's or a transaction's
// fields reads them as zero, writes back the line it was read from, and
// shares its repeated names with the other events instead of holding its
// own copies.
func TestDecodeShared(t *testing.T) {
	lines := `{"type":"invoke","process":3,"f":"watch-recv","time":1,"watch_id":"w1"}
{"type":"ok","process":3,"f":"watch-recv","time":2,"revision":7,"member":"n1","watch_id":"w1","watch_events":[{"type":"put","kv":{"key":"k","value":"a","mod_revision":7}}]}
{"type":"invoke","process":3,"f":"watch-recv","time":3,"watch_id":"w1"}
{"type":"ok","process":3,"f":"watch-recv","time":4,"revision":8,"member":"n1","watch_id":"w1","watch_events":[{"type":"put","kv":{"key":"k","value":"b","mod_revision":8}}]}
{"type":"info","process":"nemesis","f":"start","time":5,"fault":"kill","nodes":["n1"]}
`
	events, err := Decode(strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	var back strings.Builder
	for _, e := range events {
		if e.Process != Nemesis && (e.Fault != "" || len(e.Nodes) != 0 || len(e.Then) != 0 || e.Hash != 0) {
			t.Errorf("event at %d reads nemesis or txn fields it does not have: %+v", e.Time, e)
		}
		line, err := e.MarshalLine()
		if err != nil {
			t.Fatal(err)
		}
		back.Write(line)
	}
	if back.String() != lines {
		t.Errorf("written back as\n%s\nwant\n%s", back.String(), lines)
	}
	if events[4].Fault != "kill" || len(events[4].Nodes) != 1 {
		t.Errorf("the start event lost its fault: %+v", events[4].FaultInfo)
	}
	same := func(what string, a, b string) {
		if unsafe.StringData(a) != unsafe.StringData(b) {
			t.Errorf("%s: two copies of %q", what, a)
		}
	}
	same("type", string(events[1].Type), string(events[3].Type))
	same("f", events[0].F, events[3].F)
	same("member", events[1].Member, events[3].Member)
	same("watch id", events[0].WatchID, events[3].WatchID)
	same("watch event type", events[1].WatchEvents[0].Type, events[3].WatchEvents[0].Type)
	same("watch event key", events[1].WatchEvents[0].KV.Key, events[3].WatchEvents[0].KV.Key)
}
