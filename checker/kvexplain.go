package checker

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// anomaly names the operation that cannot follow the longest linearizable
// prefix porcupine found, and the state that prefix leaves.
func (h *kvHistory) anomaly(info porcupine.LinearizationInfo) string {
	var longest []int
	if ps := info.PartialLinearizations(); len(ps) > 0 && len(ps[0]) > 0 {
		slices.SortFunc(ps[0], func(a, b []int) int {
			if len(a) != len(b) {
				return len(b) - len(a)
			}
			return slices.Compare(a, b)
		})
		longest = ps[0][0]
	}
	s := h.init()
	done := make([]bool, len(h.ops))
	for _, id := range longest {
		_, s = h.step(s, h.ops[id].Input.(*kvOp))
		done[id] = true
	}
	minReturn := int64(math.MaxInt64)
	for i, op := range h.ops {
		if !done[i] {
			minReturn = min(minReturn, op.Return)
		}
	}
	var stuck []porcupine.Operation
	for i, op := range h.ops {
		if !done[i] && op.Call <= minReturn {
			if ok, _ := h.step(s, op.Input.(*kvOp)); !ok {
				stuck = append(stuck, op)
			}
		}
	}
	prefix := fmt.Sprintf("the longest linearizable prefix (%d of %s) ends at %s",
		len(longest), plural(len(h.ops), "operation"), h.describeState(s))
	if len(stuck) == 0 {
		return "no order of the kv operations is linearizable; " + prefix
	}
	slices.SortFunc(stuck, func(a, b porcupine.Operation) int { return cmp.Compare(a.Return, b.Return) })
	o := stuck[0].Input.(*kvOp)
	msg := fmt.Sprintf("%s by process %d at %s cannot follow: %s", h.describe(o), o.op.Process, seconds(o.op.Invoke.Time), prefix)
	if len(stuck) > 1 {
		msg += fmt.Sprintf("; %s cannot follow it either", plural(len(stuck)-1, "other operation"))
	}
	return msg
}

func (h *kvHistory) describeKV(kv kvKV, keysOnly bool) string {
	v := ""
	if !keysOnly {
		v = fmt.Sprintf("=%q", h.values[kv.val])
	}
	return fmt.Sprintf("%s%s (create %d, mod %d, version %d)", h.keys[kv.key], v, kv.create, kv.mod, kv.ver)
}

func (h *kvHistory) describeKVs(kvs []kvKV, keysOnly bool) string {
	if len(kvs) == 0 {
		return "nothing"
	}
	var parts []string
	for _, kv := range kvs {
		parts = append(parts, h.describeKV(kv, keysOnly))
	}
	return strings.Join(parts, ", ")
}

func (h *kvHistory) describe(o *kvOp) string {
	op := o.op
	in := op.Invoke
	var s string
	switch o.kind {
	case kindRead:
		s = fmt.Sprintf("%s(%s", op.F, in.Key)
		if in.RangeEnd != "" {
			s += ".." + in.RangeEnd
		}
		if in.Limit > 0 {
			s += fmt.Sprintf(", limit %d", in.Limit)
		}
		if in.KeysOnly {
			s += ", keys only"
		}
		s += fmt.Sprintf(") → %s, count %d", h.describeKVs(o.kvs, o.keysOnly), o.count)
		if o.more {
			s += ", more"
		}
	case kindPut:
		s = fmt.Sprintf("kv-put(%s, %q)", in.Key, in.Value)
		if o.prevKV && !o.info {
			if o.prev == nil {
				s += " → prev none"
			} else {
				s += " → prev " + h.describeKV(*o.prev, false)
			}
		}
	case kindDelete:
		s = fmt.Sprintf("kv-delete(%s)", in.Key)
		if !o.info {
			s += fmt.Sprintf(" → deleted %d", o.deleted)
		}
	case kindCompact:
		s = fmt.Sprintf("kv-compact(%d)", o.compacts)
	case kindBump:
		s = fmt.Sprintf("%s(%s, %q) of another workload", op.F, in.Key, in.Value)
	case kindTxn:
		var cs, then, els []string
		for _, c := range in.Compares {
			if c.Target == "value" {
				cs = append(cs, fmt.Sprintf("value(%s) %s %q", c.Key, c.Op, c.Value))
			} else {
				cs = append(cs, fmt.Sprintf("%s(%s) %s %d", c.Target, c.Key, c.Op, c.Number))
			}
		}
		for _, t := range in.Then {
			then = append(then, fmt.Sprintf("%s %s %s", t.F, t.Key, t.Value))
		}
		for _, t := range in.Else {
			els = append(els, fmt.Sprintf("%s %s", t.F, t.Key))
		}
		s = fmt.Sprintf("kv-txn(if %s then %s else %s)", strings.Join(cs, " && "), strings.Join(then, "; "), strings.Join(els, "; "))
		if !o.info {
			s += map[bool]string{true: " → succeeded", false: " → failed"}[o.succeeded]
			for _, r := range o.responses {
				if r.f == "get" {
					s += "; get → " + h.describeKVs(r.kvs, false)
				}
			}
		}
	}
	switch {
	case o.pinned:
		s += fmt.Sprintf(" → ? (seen by a read: revision %d)", o.rev)
	case o.info:
		s += " → ?"
	default:
		s += fmt.Sprintf(" @%d", o.rev)
	}
	return s
}

func (h *kvHistory) describeState(s *kvState) string {
	var parts []string
	for i, k := range s.keys {
		if k.val != 0 {
			parts = append(parts, h.describeKV(kvKV{key: i, val: k.val, create: k.create, mod: k.mod, ver: k.ver}, false))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("revision %d, no keys", s.rev)
	}
	return fmt.Sprintf("revision %d: %s", s.rev, strings.Join(parts, ", "))
}
