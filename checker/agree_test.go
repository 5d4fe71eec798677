package checker

import (
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

func TestAgree(t *testing.T) {
	members := []string{"n1", "n2", "n3"}
	op := history.Event{Type: history.OK, Process: 1, F: history.Read}
	hash := func(member string, rev, compacted int64, h uint32) history.Event {
		return history.Event{Type: history.Info, Process: history.Nemesis, F: history.HashKV, Member: member, Revision: rev, CompactRevision: compacted, FaultInfo: &history.FaultInfo{Hash: h}}
	}
	failed := func(member, err string) history.Event {
		return history.Event{Type: history.Info, Process: history.Nemesis, F: history.HashKV, Member: member, Revision: 90, Error: err}
	}
	for _, tc := range []struct {
		name   string
		events []history.Event
		want   Verdict
		// says must all be in the summary and anomalies.
		says []string
	}{
		{"agree", []history.Event{op, hash("n1", 90, 40, 0xabc), hash("n2", 90, 40, 0xabc), hash("n3", 90, 40, 0xabc)},
			Valid, []string{"n1, n2, n3 at revision 90", "00000abc", "compacted at 40"}},
		{"hash differs", []history.Event{hash("n1", 90, 40, 0xabc), hash("n2", 90, 40, 0xabc), hash("n3", 90, 40, 0xdef)},
			Invalid, []string{"at revision 90 n3 has hash 00000def", "n1 has 00000abc"}},
		{"compaction differs", []history.Event{hash("n1", 90, 40, 0xabc), hash("n2", 90, 0, 0xabc), hash("n3", 90, 40, 0xabc)},
			Invalid, []string{"n2 has hash 00000abc, compacted at 0", "n1 has 00000abc, compacted at 40"}},
		// Two members that differ are a divergence whoever else is missing.
		{"differ, one down", []history.Event{hash("n1", 90, 40, 0xabc), hash("n2", 90, 40, 0xdef), failed("n3", "connection refused")},
			Invalid, []string{"n2 has hash 00000def"}},
		{"one down", []history.Event{hash("n1", 90, 40, 0xabc), hash("n2", 90, 40, 0xabc), failed("n3", "connection refused")},
			Unknown, []string{"n3: connection refused", "n1, n2 at revision 90"}},
		{"one not asked", []history.Event{hash("n1", 90, 40, 0xabc), hash("n2", 90, 40, 0xabc)},
			Unknown, []string{"n3 was not asked"}},
		{"no hashes", []history.Event{op}, Unknown, []string{"no member hashes were recorded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Agree(t.Context(), &Input{Events: tc.events, Members: members})
			if res.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s: %+v", res.Verdict, tc.want, res)
			}
			if res.Verdict == Invalid && len(res.Anomalies) == 0 {
				t.Error("invalid without evidence")
			}
			all := res.Summary + "\n" + strings.Join(res.Anomalies, "\n")
			for _, s := range tc.says {
				if !strings.Contains(all, s) {
					t.Errorf("%q lacks %q", all, s)
				}
			}
		})
	}
}
