package elle

import (
	"fmt"
	"slices"
	"strings"
)

// explain says on which key, and why, the edge u→v of kind rel exists.
func (c *checker) explain(u, v int32, rel Rel) (string, string) {
	tu, tv := c.txns[u], c.txns[v]
	switch rel {
	case Process:
		return "", fmt.Sprintf("process %d ran T%d, then T%d", tu.Process, tu.ID, tv.ID)
	case Realtime:
		return "", fmt.Sprintf("T%d committed at %s, before T%d was invoked at %s", tu.ID, seconds(tu.Complete), tv.ID, seconds(tv.Invoke))
	}
	if c.opts.Workload == ListAppend {
		return c.explainAppend(tu, tv, rel)
	}
	return c.explainRegister(tu, tv, rel)
}

func (c *checker) explainAppend(tu, tv Txn, rel Rel) (string, string) {
	switch rel {
	case WR:
		for _, m := range tv.Mops {
			if m.Kind != Read || len(m.List) == 0 {
				continue
			}
			last := m.List[len(m.List)-1]
			if appends(tu, m.Key, last) {
				return m.Key, fmt.Sprintf("T%d read %s of %s, whose last element %d T%d appended", tv.ID, listString(m.List), m.Key, last, tu.ID)
			}
		}
	case WW:
		for _, m := range tu.Mops {
			if m.Kind != Append {
				continue
			}
			k := c.keys[m.Key]
			p, ok := k.pos[m.Value]
			if !ok {
				continue
			}
			if p+1 < len(k.order) && appends(tv, m.Key, k.order[p+1]) {
				return m.Key, fmt.Sprintf("T%d appended %d to %s right after T%d appended %d (%s was read as %s)",
					tv.ID, k.order[p+1], m.Key, tu.ID, m.Value, m.Key, listString(k.order[:p+2]))
			}
			if p+1 == len(k.order) {
				if e, ok := unreadAppend(k, tv); ok {
					return m.Key, fmt.Sprintf("T%d appended %d to %s, which no read saw, so it came after T%d's %d, the last element read",
						tv.ID, e, m.Key, tu.ID, m.Value)
				}
			}
		}
	case RW:
		for _, m := range tu.Mops {
			if m.Kind != Read {
				continue
			}
			k := c.keys[m.Key]
			if !isPrefix(m.List, k.order) {
				continue
			}
			seen := "read " + listString(m.List) + " of " + m.Key
			if len(m.List) < len(k.order) && appends(tv, m.Key, k.order[len(m.List)]) {
				return m.Key, fmt.Sprintf("T%d %s, which did not include %d, the next element, that T%d appended", tu.ID, seen, k.order[len(m.List)], tv.ID)
			}
			if len(m.List) == len(k.order) {
				if e, ok := unreadAppend(k, tv); ok {
					return m.Key, fmt.Sprintf("T%d %s, which did not include %d, that T%d appended", tu.ID, seen, e, tv.ID)
				}
			}
		}
	}
	return "", rel.String()
}

func appends(t Txn, key string, e int64) bool {
	return slices.ContainsFunc(t.Mops, func(m Mop) bool { return m.Kind == Append && m.Key == key && m.Value == e })
}

// unreadAppend is an element t appended to k that no read saw.
func unreadAppend(k *keyInfo, t Txn) (int64, bool) {
	for _, m := range t.Mops {
		if m.Kind == Append && m.Key == k.name {
			if _, seen := k.pos[m.Value]; !seen {
				return m.Value, true
			}
		}
	}
	return 0, false
}

func (c *checker) explainRegister(tu, tv Txn, rel Rel) (string, string) {
	writes := func(t Txn, key string, v int64) bool {
		return slices.ContainsFunc(t.Mops, func(m Mop) bool { return m.Kind == Write && m.Key == key && m.Value == v })
	}
	after := func(key string, v1 int64, t Txn) (int64, bool) {
		for _, v2 := range c.keys[key].next[v1] {
			if writes(t, key, v2) {
				return v2, true
			}
		}
		return 0, false
	}
	switch rel {
	case WR:
		for _, m := range tv.Mops {
			if m.Kind == Read && m.Value != 0 && writes(tu, m.Key, m.Value) {
				return m.Key, fmt.Sprintf("T%d read %s = %d, which T%d wrote", tv.ID, m.Key, m.Value, tu.ID)
			}
		}
	case WW:
		for _, m := range tu.Mops {
			if m.Kind != Write {
				continue
			}
			if v2, ok := after(m.Key, m.Value, tv); ok {
				return m.Key, fmt.Sprintf("T%d wrote %s = %d, the version after T%d's %d (a transaction read %d, then wrote %d)",
					tv.ID, m.Key, v2, tu.ID, m.Value, m.Value, v2)
			}
		}
	case RW:
		for _, m := range tu.Mops {
			if m.Kind != Read {
				continue
			}
			if v2, ok := after(m.Key, m.Value, tv); ok {
				return m.Key, fmt.Sprintf("T%d read %s = %s, which T%d's write of %d overwrote", tu.ID, m.Key, valueString(m.Value), tv.ID, v2)
			}
		}
	}
	return "", rel.String()
}

func seconds(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) }

// Describe is one line about t: its name, process, outcome and mops.
func Describe(t Txn) string {
	return fmt.Sprintf("T%d (process %d, %s, invoked at %s): %s", t.ID, t.Process, t.Status, seconds(t.Invoke), Mops(t))
}

// Mops writes t's mops as [append x 1, read y [1 2]].
func Mops(t Txn) string {
	parts := make([]string, len(t.Mops))
	for i, m := range t.Mops {
		parts[i] = mopString(m, t.Status == OK)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func mopString(m Mop, known bool) string {
	switch m.Kind {
	case Append:
		return fmt.Sprintf("append %s %d", m.Key, m.Value)
	case Write:
		return fmt.Sprintf("write %s %d", m.Key, m.Value)
	}
	switch {
	case !known:
		return "read " + m.Key + " ?"
	case m.List != nil:
		return "read " + m.Key + " " + listString(m.List)
	}
	return "read " + m.Key + " " + valueString(m.Value)
}

// Text is the anomaly as lines a person can follow: what it is, then for
// a cycle each edge and why it exists, then the transactions.
func (a Anomaly) Text(txns []Txn) []string {
	name := func(i int) string { return fmt.Sprintf("T%d", txns[i].ID) }
	if a.Steps == nil {
		if len(a.Txns) == 0 {
			return []string{fmt.Sprintf("%s on %s: %s", a.Type, a.Key, a.Why)}
		}
		out := []string{fmt.Sprintf("%s on %s: %s", a.Type, a.Key, a.Why)}
		for _, i := range a.Txns {
			out = append(out, "  "+Describe(txns[i]))
		}
		return out
	}
	var path []string
	for _, s := range a.Steps {
		path = append(path, name(s.From)+" -"+s.Rel.String()+"->")
	}
	path = append(path, name(a.Steps[0].From))
	out := []string{a.Type + ": " + strings.Join(path, " ")}
	for i, s := range a.Steps {
		lead := "  "
		if i == len(a.Steps)-1 {
			lead = "  however, "
		}
		out = append(out, fmt.Sprintf("%s%s < %s (%s): %s", lead, name(s.From), name(s.To), s.Rel, s.Why))
	}
	for _, i := range a.Txns {
		out = append(out, "  "+Describe(txns[i]))
	}
	return out
}

// Line is the anomaly on one line: its cycle with each edge's reason,
// then the transactions.
func (a Anomaly) Line(txns []Txn) string {
	if a.Steps == nil {
		line := fmt.Sprintf("%s on %s: %s", a.Type, a.Key, a.Why)
		if len(a.Txns) > 0 {
			line += ". " + let(a.Txns, txns)
		}
		return line
	}
	var path, whys []string
	for _, s := range a.Steps {
		hop := s.Rel.String()
		if s.Key != "" {
			hop += " " + s.Key
		}
		path = append(path, fmt.Sprintf("T%d -%s->", txns[s.From].ID, hop))
		whys = append(whys, s.Why)
	}
	path = append(path, fmt.Sprintf("T%d", txns[a.Steps[0].From].ID))
	return fmt.Sprintf("%s: %s: %s. %s", a.Type, strings.Join(path, " "), strings.Join(whys, "; "), let(a.Txns, txns))
}

// let names the transactions of an anomaly.
func let(is []int, txns []Txn) string {
	parts := make([]string, len(is))
	for i, x := range is {
		t := txns[x]
		parts[i] = fmt.Sprintf("T%d = %s (process %d, %s, invoked at %s)", t.ID, Mops(t), t.Process, t.Status, seconds(t.Invoke))
	}
	return "Let " + strings.Join(parts, "; ")
}
