package history

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
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
