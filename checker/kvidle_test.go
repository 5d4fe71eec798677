package checker

import (
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

// TestKVIdleWrites: a delete of unknown outcome that alone explains a
// revision a read saw stays in the search; one invoked after that read
// returned can have changed nothing any operation saw and is left out.
// Left in, it is the first that makes the history linearizable: without
// it, the read at revision 3 is unexplained.
func TestKVIdleWrites(t *testing.T) {
	kv := []history.KV{{Key: "k", Value: "a", CreateRevision: 2, ModRevision: 2, Version: 1}}
	events := []history.Event{
		{Type: history.Invoke, Process: 1, Time: 0, F: KVPut, Key: "k", Value: "a"},
		{Type: history.OK, Process: 1, Time: 10, F: KVPut, Key: "k", Revision: 2},
		{Type: history.Invoke, Process: 2, Time: 20, F: KVDelete, Key: "k"},
		{Type: history.Info, Process: 2, Time: 30, F: KVDelete, Error: "context deadline exceeded"},
		{Type: history.Invoke, Process: 1, Time: 35, F: KVGet, Key: "k"},
		{Type: history.OK, Process: 1, Time: 38, F: KVGet, Key: "k", Revision: 2, KVs: kv, Count: 1},
		{Type: history.Invoke, Process: 1, Time: 40, F: KVGet, Key: "k"},
		{Type: history.OK, Process: 1, Time: 50, F: KVGet, Key: "k", Revision: 3},
		{Type: history.Invoke, Process: 3, Time: 60, F: KVDelete, Key: "k"},
		{Type: history.Info, Process: 3, Time: 70, F: KVDelete, Error: "context deadline exceeded"},
	}
	ops, err := history.Ops(events)
	if err != nil {
		t.Fatal(err)
	}
	res := KV(t.Context(), &Input{Ops: ops, NoResolve: true})
	if res.Verdict != Valid || !strings.Contains(res.Summary, "1 left out") {
		t.Errorf("%s: %s; want valid with one write left out", res.Verdict, res.Summary)
	}
	// Without the first delete nothing explains revision 3.
	var without []history.Op
	for _, op := range ops {
		if op.Invoke.Process != 2 {
			without = append(without, op)
		}
	}
	res = KV(t.Context(), &Input{Ops: without, NoResolve: true})
	if res.Verdict != Invalid {
		t.Errorf("without the delete that made revision 3: %s: %s", res.Verdict, res.Summary)
	}
}
