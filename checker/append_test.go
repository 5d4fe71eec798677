package checker

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

// isCycleFixture says whether a fixture's anomaly is a cycle, which the
// checker must draw.
func isCycleFixture(base string) bool {
	for _, t := range []string{"G0", "G1c", "G-single", "G2-item", "G-nonadjacent"} {
		if strings.Contains(base, t) {
			return true
		}
	}
	return false
}

// TestTxnFixtures checks every list-append history in testdata/append
// and rw-register one in testdata/wr; each invalid one that is a cycle
// must come with its drawing.
func TestTxnFixtures(t *testing.T) {
	for _, tc := range []struct {
		dir, name string
		check     Func
	}{{"append", AppendChecker, Append}, {"wr", WRChecker, WR}} {
		t.Run(tc.dir, func(t *testing.T) {
			runFixtures(t, tc.dir, tc.name, func(t *testing.T, ops []history.Op, _ []history.Event, vis string) Result {
				res := tc.check(t.Context(), &Input{Ops: ops, Visualize: at(vis)})
				checkDrawing(t, res, vis)
				return res
			}, isCycleFixture)
		})
	}
}

// checkDrawing: a drawing, when there is one, is an SVG of the cycle's
// transactions.
func checkDrawing(t *testing.T, res Result, vis string) {
	t.Helper()
	if res.Visualization == "" {
		return
	}
	b, err := os.ReadFile(vis)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.HasPrefix(s, "<svg") || !strings.Contains(s, "T1 ·") {
		t.Errorf("drawing is not an SVG of T1's cycle: %.200s", s)
	}
}

// TestAppendBadInput: a history the checker cannot read is unknown, with
// the reason.
func TestAppendBadInput(t *testing.T) {
	ops := []history.Op{{Process: 0, F: AppendTxn,
		Invoke:   &history.Event{Type: history.Invoke, F: AppendTxn, Txn: &history.Txn{Then: []history.TxnOp{{F: MopRead, Key: "x"}}}},
		Complete: &history.Event{Type: history.OK, F: AppendTxn, Txn: &history.Txn{Responses: []history.TxnOp{{F: MopRead, Key: "x", Value: "1 two"}}}}}}
	res := Append(t.Context(), &Input{Ops: ops})
	if res.Verdict != Unknown || !strings.Contains(res.Summary, `read of x returned "1 two", not a list of numbers`) {
		t.Errorf("%s: %s; want unknown naming the bad read", res.Verdict, res.Summary)
	}
}

// TestAppendStopped: a check whose time is up before it searched the
// cycles is unknown, never valid.
func TestAppendStopped(t *testing.T) {
	_, ops, _ := readFixture(t, "testdata/append/invalid-G0-write-cycle.jsonl")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res := Append(ctx, &Input{Ops: ops})
	if res.Verdict != Unknown || !strings.Contains(res.Summary, "stopped before searching 1 of 1 strongly connected components") {
		t.Errorf("%s: %s; want unknown, stopped", res.Verdict, res.Summary)
	}
}
