package elle

import (
	"slices"
	"strings"
	"testing"
)

// parse reads Elle's test notation: ok transactions separated by ";", each
// a run of mops "ax1" (append 1 to x) and "rx12" (read x as [1 2]; "rx" is
// an empty read). A transaction prefixed "!" failed, "?" is of unknown
// outcome. Each transaction is its own process and they all overlap in
// time, so there is no real-time or process order unless a test sets one.
func parse(t *testing.T, h string) []Txn {
	t.Helper()
	var out []Txn
	for i, s := range strings.Split(h, ";") {
		s = strings.TrimSpace(s)
		tx := Txn{ID: i + 1, Process: i, Status: OK, Invoke: 0, Complete: 100}
		switch {
		case strings.HasPrefix(s, "!"):
			tx.Status, s = Fail, s[1:]
		case strings.HasPrefix(s, "?"):
			tx.Status, s = Info, s[1:]
		}
		for len(s) > 0 {
			op, key := s[0], string(s[1])
			s = s[2:]
			digits := ""
			for len(s) > 0 && s[0] >= '0' && s[0] <= '9' {
				digits, s = digits+s[:1], s[1:]
			}
			switch op {
			case 'a':
				tx.Mops = append(tx.Mops, Mop{Kind: Append, Key: key, Value: int64(digits[0] - '0')})
			case 'r':
				l := []int64{}
				for _, d := range digits {
					l = append(l, int64(d-'0'))
				}
				tx.Mops = append(tx.Mops, Mop{Kind: Read, Key: key, List: l})
			default:
				t.Fatalf("bad mop %c in %q", op, h)
			}
		}
		out = append(out, tx)
	}
	return out
}

func check(t *testing.T, txns []Txn, model string) *Report {
	t.Helper()
	r, err := Check(txns, Options{Workload: ListAppend, Model: model})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range r.Anomalies {
		t.Log(strings.Join(a.Text(txns), "\n"))
	}
	return r
}

// TestAppendAnomalies runs the research notes' first fixtures: each
// failing history must show its anomaly, and its twin must be valid.
func TestAppendAnomalies(t *testing.T) {
	for _, tc := range []struct {
		name, bad, good, want, model string
	}{
		{"G0", "ax1ay1; ax2ay2; rx12ry21", "ax1ay1; ax2ay2; rx12ry12", G0, "serializable"},
		{"G1c", "ax1ry1; ax2ay1; rx12", "ax1ry; ax2ay1; rx12", G1c, "serializable"},
		{"G-single", "ax1ay1; ax2ry; rx12", "ax1ay1; ax2ry1; rx12", GSingle, "serializable"},
		{"G2-item", "rxay1; ryax1", "rxay1; ry1ax1", G2Item, "serializable"},
		{"G-nonadjacent", "ax1; rx1ry; ay1; ry1rx", "ax1; rx1ry; ay1; ry1rx1", GNonadjacent, "serializable"},
		{"G1a", "!ax1; rx1", "ax1; rx1", G1a, "serializable"},
		{"G1b", "ax1ax2; rx1", "ax1ax2; rx12", G1b, "serializable"},
		{"incompatible", "ax1; ax2; ax3; rx12; rx13", "ax1; ax2; rx1; rx12", Incompatible, "serializable"},
		{"duplicate", "ax1; rx11", "ax1; rx1", Duplicate, "serializable"},
		{"internal", "ax1rx", "ax1rx1", Internal, "serializable"},
		{"garbage", "rx9", "ax9; rx9", Garbage, "serializable"},
		{"info-unread", "ax1; rx12", "?ax2; ax1; rx1", Garbage, "strict-serializable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := check(t, parse(t, tc.bad), tc.model)
			if bad.Valid || bad.Counts[tc.want] == 0 {
				t.Errorf("%s: valid %v, found %v; want %s", tc.bad, bad.Valid, bad.Counts, tc.want)
			}
			good := check(t, parse(t, tc.good), tc.model)
			if !good.Valid || len(good.Counts) > 0 {
				t.Errorf("%s: valid %v (%s), found %v; want valid", tc.good, good.Valid, good.Unknown, good.Counts)
			}
		})
	}
}

// TestSnapshotAllowsWriteSkew: G2-item is forbidden by serializable, not
// by snapshot isolation, and the verdicts follow the model.
func TestSnapshotAllowsWriteSkew(t *testing.T) {
	txns := parse(t, "rxay1; ryax1")
	if r := check(t, txns, "snapshot-isolation"); !r.Valid || r.Counts[G2Item] != 1 {
		t.Errorf("snapshot isolation: valid %v, found %v; want valid with G2-item allowed", r.Valid, r.Counts)
	}
	if r := check(t, txns, "serializable"); r.Valid {
		t.Error("serializable: valid; want G2-item forbidden")
	}
}

// TestRealtime: a read that began after an append committed but does not
// see it is fine for serializable, not for strict serializable.
func TestRealtime(t *testing.T) {
	txns := parse(t, "ax1; rx")
	txns[0].Invoke, txns[0].Complete = 0, 10
	txns[1].Invoke, txns[1].Complete = 20, 30
	if r := check(t, txns, "serializable"); !r.Valid {
		t.Errorf("serializable: %v, want valid", r.Counts)
	}
	r := check(t, txns, "strict-serializable")
	if r.Valid || r.Counts[GSingle+RealtimeSuffix] != 1 {
		t.Errorf("strict: found %v, want G-single-realtime", r.Counts)
	}
	txt := strings.Join(r.Anomalies[0].Text(txns), "\n")
	for _, want := range []string{"T1 committed at 0.000s, before T2 was invoked", "T2 read [] of x, which did not include 1"} {
		if !strings.Contains(txt, want) {
			t.Errorf("evidence lacks %q:\n%s", want, txt)
		}
	}
	if svg := r.Anomalies[0].SVG(txns); !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "realtime") {
		t.Errorf("svg: %.200s", svg)
	}
}

// TestProcess: the same history through one process is a process
// anomaly for strong session serializable.
func TestProcess(t *testing.T) {
	txns := parse(t, "ax1; rx")
	txns[1].Process = txns[0].Process
	txns[1].Invoke = 200
	r := check(t, txns, "strong-session-serializable")
	if r.Valid || r.Counts[GSingle+ProcessSuffix] != 1 {
		t.Errorf("found %v, want G-single-process", r.Counts)
	}
}

// TestEvidence: the wr edge says which read and which append made it.
func TestEvidence(t *testing.T) {
	txns := parse(t, "ax1ay1; ax2ay2; rx12ry21")
	r := check(t, txns, "serializable")
	var got []string
	for _, a := range r.Anomalies {
		got = append(got, a.Text(txns)...)
	}
	want := "T2 appended 2 to x right after T1 appended 1 (x was read as [1 2])"
	if !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, want) }) {
		t.Errorf("no line says %q:\n%s", want, strings.Join(got, "\n"))
	}
}

// TestInfoObserved: an info append that a read saw is on the cycle like a
// committed one.
func TestInfoObserved(t *testing.T) {
	r := check(t, parse(t, "?ax1ay1; ax2ay2; rx12ry21"), "serializable")
	if r.Valid || r.Counts[G0] != 1 {
		t.Errorf("found %v, want G0", r.Counts)
	}
}

// TestRegister: rw-register inference.
func TestRegister(t *testing.T) {
	w := func(k string, v int64) Mop { return Mop{Kind: Write, Key: k, Value: v} }
	rd := func(k string, v int64) Mop { return Mop{Kind: Read, Key: k, Value: v} }
	mk := func(mops ...[]Mop) []Txn {
		var out []Txn
		for i, m := range mops {
			out = append(out, Txn{ID: i + 1, Process: i, Status: OK, Complete: 100, Mops: m})
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		txns  []Txn
		want  string
		valid bool
	}{
		{"G1c", mk([]Mop{w("x", 1), rd("y", 2)}, []Mop{w("y", 2), rd("x", 1)}), G1c, false},
		{"G1c-twin", mk([]Mop{w("x", 1), rd("y", 0)}, []Mop{w("y", 2), rd("x", 1)}), "", true},
		{"write-skew", mk([]Mop{rd("x", 0), w("y", 1)}, []Mop{rd("y", 0), w("x", 2)}), G2Item, false},
		{"garbage", mk([]Mop{rd("x", 5)}), Garbage, false},
		{"G1b", mk([]Mop{w("x", 1), w("x", 2)}, []Mop{rd("x", 1)}), G1b, false},
		{"cyclic", mk([]Mop{rd("x", 1), w("x", 2)}, []Mop{rd("x", 2), w("x", 1)}), CyclicVersion, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Check(tc.txns, Options{Workload: Register, Model: "serializable"})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range r.Anomalies {
				t.Log(strings.Join(a.Text(tc.txns), "\n"))
			}
			if r.Valid != tc.valid || tc.want != "" && r.Counts[tc.want] == 0 {
				t.Errorf("valid %v, found %v; want valid %v with %s", r.Valid, r.Counts, tc.valid, tc.want)
			}
		})
	}
}
