package reports

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

// The timeline is the view Jepsen users open first when a verdict
// surprises them: one lane per process, each operation a bar from its
// invocation to its completion, coloured by outcome, over the fault
// windows. It is one self-contained page (inline script and style, the
// history embedded as JSON) that draws on a canvas only what is in view,
// so a run of hundreds of thousands of operations stays usable.

// Kinds of bars, in the order of the page script's KINDS and COLORS.
const (
	barOK = iota
	barFail
	barInfo
	barFault // a fault window on the nemesis's lane
	barEvent // any other nemesis event: a leader change, a recovery
)

// timelineData is the history as the page's script reads it: columns of
// equal length, one entry per bar, times in microseconds since the start
// of the test. Columns keep the page small: about 120 bytes an operation,
// most of them its hover text (141k operations: 16 MB).
type timelineData struct {
	Title string   `json:"title"`
	End   int64    `json:"end"`
	Lanes []string `json:"lanes"`
	// Lane, Start, Stop, Kind and Text are the bars. Bars of one lane are
	// in order of Start.
	Lane  []int    `json:"lane"`
	Start []int64  `json:"start"`
	Stop  []int64  `json:"stop"`
	Kind  []int    `json:"kind"`
	Text  []string `json:"text"`
	// Faults are the windows shaded across every lane.
	Faults []timelineFault `json:"faults"`
	// Note says what of the history the page leaves out, if anything.
	Note string `json:"-"`
}

// shown is what of ops a timeline of at most limit of them holds, with a
// note of what it leaves out when that is not all. Kept are every operation that
// did not complete ok, those within nearAnomaly of one an anomaly names
// (by its process and invocation, as timelineHref links them), and the
// other ok ones from the start of the run for as many as are left: the
// page is whole up to a time and shows only what matters after it.
func shown(r *rundir.Results, ops []history.Op, limit int) ([]history.Op, string) {
	if len(ops) <= limit {
		return ops, ""
	}
	keep := make([]bool, len(ops))
	n := 0
	mark := func(i int) {
		if !keep[i] {
			keep[i] = true
			n++
		}
	}
	for i, op := range ops {
		if op.Type() != history.OK {
			mark(i)
		}
	}
	// ops are in order of invocation, as history.Ops pairs them.
	for _, c := range r.Checks {
		for _, a := range c.Anomalies {
			for _, m := range opRef.FindAllStringSubmatch(a, -1) {
				at, err := strconv.ParseFloat(m[2], 64)
				if err != nil {
					continue
				}
				t := int64(at * 1e9)
				i, _ := slices.BinarySearchFunc(ops, t-nearAnomaly, func(op history.Op, t int64) int { return cmp.Compare(op.Invoke.Time, t) })
				for ; i < len(ops) && ops[i].Invoke.Time <= t+nearAnomaly && n < limit; i++ {
					mark(i)
				}
			}
		}
	}
	whole := int64(0) // every operation invoked before it is kept
	for i := range ops {
		if n >= limit {
			whole = ops[i].Invoke.Time
			break
		}
		mark(i)
	}
	var out []history.Op
	for i, op := range ops {
		if keep[i] {
			out = append(out, op)
		}
	}
	return out, fmt.Sprintf("%d of %d operations: every one invoked before %.3f s; after it, only those that failed, have an unknown outcome or are within %d s of one an anomaly names (history.jsonl holds them all)",
		len(out), len(ops), seconds(whole), nearAnomaly/int64(time.Second))
}

type timelineFault struct {
	Start int64  `json:"start"`
	Stop  int64  `json:"stop"`
	Label string `json:"label"`
}

// nemesisLane is the label of the nemesis's lane, the first.
const nemesisLane = "nemesis"

// timelineOps bounds the operations one page holds. Chromium opens 3.86
// million (a 30-minute kv,watch run at --rate 500: 471 MB) in about 11 s;
// at about 120 bytes an operation, a page much past that nears the longest
// string its script engine holds (2^29 characters), and would not open.
const timelineOps = 3_500_000

// nearAnomaly is how close in time to an operation an anomaly names the
// others must be to stay in a timeline cut to timelineOps.
const nearAnomaly = int64(time.Second)

// buildTimeline lays out ops (every client operation, or at most limit of
// them: see shown) and the nemesis's events.
func buildTimeline(r *rundir.Results, events []history.Event, ops []history.Op, limit int) timelineData {
	ops, note := shown(r, ops, limit)
	d := timelineData{Title: r.Config.Name, Note: note}
	if d.Title == "" {
		d.Title = "faultline run"
	}
	var end int64
	for _, e := range events {
		end = max(end, e.Time)
	}
	d.End = micros(end)

	// Lanes: the nemesis, then every process in numeric order.
	procs := map[history.Process]bool{}
	for _, op := range ops {
		procs[op.Process] = true
	}
	order := make([]history.Process, 0, len(procs))
	for p := range procs {
		order = append(order, p)
	}
	slices.Sort(order)
	lane := map[history.Process]int{history.Nemesis: 0}
	d.Lanes = append(d.Lanes, nemesisLane)
	for _, p := range order {
		lane[p] = len(d.Lanes)
		d.Lanes = append(d.Lanes, "p"+strconv.Itoa(int(p)))
	}

	type bar struct {
		lane        int
		start, stop int64
		kind        int
		text        string
	}
	var bars []bar
	for _, w := range history.Faults(events) {
		stop := w.Stop
		if stop < 0 {
			stop = end
		}
		label := w.Fault
		if len(w.Nodes) > 0 {
			label += " " + strings.Join(w.Nodes, ",")
		}
		d.Faults = append(d.Faults, timelineFault{Start: micros(w.Start), Stop: micros(stop), Label: label})
		bars = append(bars, bar{0, w.Start, stop, barFault, faultText(w)})
	}
	for _, e := range events {
		if e.Process == history.Nemesis && e.F != history.Start && e.F != history.Stop {
			bars = append(bars, bar{0, e.Time, e.Time, barEvent, nemesisText(e)})
		}
	}
	for _, op := range ops {
		stop := op.Complete.Time
		if op.Pending() {
			stop = max(end, op.Invoke.Time)
		}
		bars = append(bars, bar{lane[op.Process], op.Invoke.Time, stop, outcomeKind(op.Type()), opText(op)})
	}
	slices.SortStableFunc(bars, func(a, b bar) int {
		return cmp.Or(cmp.Compare(a.lane, b.lane), cmp.Compare(a.start, b.start))
	})
	for _, b := range bars {
		d.Lane = append(d.Lane, b.lane)
		d.Start = append(d.Start, micros(b.start))
		d.Stop = append(d.Stop, micros(b.stop))
		d.Kind = append(d.Kind, b.kind)
		d.Text = append(d.Text, b.text)
	}
	return d
}

func micros(ns int64) int64 { return ns / 1000 }

func outcomeKind(t history.Type) int {
	switch t {
	case history.OK:
		return barOK
	case history.Fail:
		return barFail
	}
	return barInfo
}

// opText is what hovering over an operation shows: what it asked, what
// came back, who served it, when.
func opText(op history.Op) string {
	in, out := op.Invoke, op.Complete
	var b strings.Builder
	fmt.Fprintf(&b, "p%d %s", op.Process, op.F)
	if in.Key != "" {
		fmt.Fprintf(&b, " %q", in.Key)
		if in.RangeEnd != "" {
			fmt.Fprintf(&b, "..%q", in.RangeEnd)
		}
	}
	switch {
	case op.F == history.CAS && in.Expect == "":
		fmt.Fprintf(&b, " from no value to %q", in.Value)
	case op.F == history.CAS:
		fmt.Fprintf(&b, " from %q to %q", in.Expect, in.Value)
	case in.Value != "":
		fmt.Fprintf(&b, " = %q", in.Value)
	}
	if in.AtRevision != 0 {
		fmt.Fprintf(&b, " at revision %d", in.AtRevision)
	}
	if in.Serializable {
		b.WriteString(" (serializable)")
	}
	fmt.Fprintf(&b, "\n%s", out.Type)
	if out.Error != "" {
		fmt.Fprintf(&b, ": %s", out.Error)
	}
	if out.Type == history.OK {
		switch {
		case op.F == history.Read && out.Value == "":
			b.WriteString(": no value")
		case out.Value != "" && out.Value != in.Value:
			fmt.Fprintf(&b, ": %q", out.Value)
		}
		if op.F == history.CAS || len(in.Compares) > 0 {
			fmt.Fprintf(&b, ", succeeded %t", out.Succeeded)
		}
		if len(out.KVs) > 0 || out.Count > 0 {
			fmt.Fprintf(&b, ", %d keys (count %d)", len(out.KVs), out.Count)
		}
		if len(out.WatchEvents) > 0 {
			fmt.Fprintf(&b, ", %d watch events", len(out.WatchEvents))
		}
		if out.Revision != 0 {
			fmt.Fprintf(&b, ", revision %d", out.Revision)
		}
	}
	if out.Member != "" {
		fmt.Fprintf(&b, ", on %s", out.Member)
	}
	if op.Pending() {
		fmt.Fprintf(&b, "\ninvoked at %.3f s, never completed", seconds(in.Time))
	} else {
		fmt.Fprintf(&b, "\n%.3f–%.3f s (%.1f ms)", seconds(in.Time), seconds(out.Time), float64(op.Latency())/1e6)
	}
	return b.String()
}

func faultText(w history.Window) string {
	s := w.Fault
	if len(w.Nodes) > 0 {
		s += " on " + strings.Join(w.Nodes, ", ")
	}
	if w.Mechanism != "" {
		s += " (" + w.Mechanism + ")"
	}
	for _, m := range slices.Sorted(maps.Keys(w.Effects)) {
		s += "\n" + m + ": " + w.Effects[m]
	}
	if w.Stop < 0 {
		return s + fmt.Sprintf("\nfrom %.3f s, never healed", seconds(w.Start))
	}
	return s + fmt.Sprintf("\n%.3f–%.3f s", seconds(w.Start), seconds(w.Stop))
}

func nemesisText(e history.Event) string {
	s := e.F
	switch e.F {
	case history.Leader:
		s = "no leader"
		if len(e.Nodes) > 0 {
			s = fmt.Sprintf("leader %s, term %d", e.Nodes[0], e.Term)
		}
	case history.Recover:
		s = "whole again after " + e.Fault
		if e.Fault == history.Final {
			s = "whole again after the final heal"
		}
	case history.HashKV:
		s = fmt.Sprintf("hashkv of %s at revision %d: %d", e.Member, e.Revision, e.Hash)
	}
	if e.Error != "" {
		s += ": " + e.Error
	}
	return s + fmt.Sprintf("\nat %.3f s", seconds(e.Time))
}

// writeTimeline renders dir/timeline.html.
func writeTimeline(dir string, r *rundir.Results, events []history.Event, ops []history.Op) error {
	d := buildTimeline(r, events, ops, timelineOps)
	// json.Marshal escapes <, > and &, so the data cannot close its script
	// element.
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encoding the timeline: %w", err)
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "timeline.html.tmpl", struct {
		Title, Verdict, Note string
		Ops                  int
		Data                 template.JS
	}{d.Title, verdictClass(r.Verdict), d.Note, len(ops), template.JS(data)}); err != nil {
		return fmt.Errorf("rendering the timeline: %w", err)
	}
	if err := rundir.WriteFile(filepath.Join(dir, rundir.TimelineFile), buf.Bytes()); err != nil {
		return fmt.Errorf("writing the timeline: %w", err)
	}
	return nil
}

// opRef matches how checkers name an operation in their anomalies: "by
// process 3 at 2.000s", "process 1 on n2 at 3.000s", "process 50 at
// 0.005s", "process 1, invoked at 0.100s" — always its invocation time.
var opRef = regexp.MustCompile(`process (\d+)(?:,| on [^ ,]+)? (?:invoked )?at (\d+\.\d+)s`)

// timelineHref links an anomaly to the operations it names in the
// timeline (timeline.html#t=2.000&p=1&t=1.000&p=0, one t and p per
// operation), or is "" when it names none.
func timelineHref(anomaly string) string {
	refs := opRef.FindAllStringSubmatch(anomaly, -1)
	if len(refs) == 0 {
		return ""
	}
	// Both are digits and a dot: nothing to escape.
	var parts []string
	for _, m := range refs {
		parts = append(parts, "t="+m[2]+"&p="+m[1])
	}
	return rundir.TimelineFile + "#" + strings.Join(parts, "&")
}
