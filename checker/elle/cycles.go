package elle

import "slices"

// search is one kind of cycle looked for in each component: a cycle that
// starts with an edge of kind start and returns over edges in back.
type search struct {
	start, back Rel
	// tryAll: a first start edge may not close over back, so try others
	// (G-single: the one rw must be followed by ww and wr only).
	tryAll bool
}

// searchCycles finds the strongly connected components of the graph and
// explains cycles in each, weakest anomaly first: a cycle of ww alone
// (G0), of ww and wr (G1c), with one rw (G-single), with several (G2-item
// or G-nonadjacent), and only when the data dependencies alone make no
// cycle, those that need process or real-time order.
func (c *checker) searchCycles() {
	n := c.g.n()
	if n == 0 {
		return
	}
	mask := data
	if c.model.Process {
		mask |= Process
	}
	if c.model.Realtime {
		mask |= Realtime
	}
	s := newScratch(n)
	verts := make([]int32, n)
	for i := range verts {
		verts[i] = int32(i)
	}
	comps := c.g.sccs(s, verts, mask, restrict{})
	c.rep.SCCs = len(comps)
	compID := slices.Clone(s.comp)
	sub := make([]int32, n)
	searches := []search{
		{start: WW, back: WW},
		{start: WR, back: WW | WR},
		{start: RW, back: WW | WR, tryAll: true},
		{start: RW, back: data},
		{start: Process, back: data | Process},
		{start: Realtime, back: mask},
	}
	for ci, comp := range comps {
		if c.opts.Stop != nil && c.opts.Stop() {
			c.rep.Stopped = len(comps) - ci
			return
		}
		in := restrict{compID, int32(ci)}
		budget := c.opts.Budget
		truncated := false
		found := map[string]bool{}
		dataCycle := false
		for _, sr := range searches {
			if sr.start&mask == 0 {
				continue
			}
			if sr.start&data == 0 && dataCycle {
				break // an ordered variant adds nothing to a data cycle
			}
			if sr.back == data && found[GSingle] {
				continue
			}
			cyc, labels := c.find(s, comp, in, sub, sr, &budget, &truncated)
			if cyc == nil {
				continue
			}
			t := classify(labels)
			if sr.start&data != 0 {
				dataCycle = true
			}
			if found[t] {
				continue
			}
			found[t] = true
			c.addCycle(t, cyc, labels)
		}
		if len(found) == 0 {
			// Out of budget before any witness: the component still proves
			// a cycle; show the shortest one through its first vertex.
			budget = c.g.edgeCount() + 1
			p := c.g.path(s, comp[0], comp[0], mask, in, &budget, &truncated)
			cyc := append([]int32{comp[0]}, p[:len(p)-1]...)
			labels := c.labelsOf(cyc, mask, 0)
			c.addCycle(classify(labels), cyc, labels)
		}
		if truncated {
			c.rep.Truncated++
		}
	}
}

// find looks in comp for a cycle of search sr: it takes the components
// of comp over sr's edges and, in each, an edge of kind sr.start from u
// to v and the shortest way back from v to u. It returns the cycle's
// vertices, starting with u, and the kind each edge is explained as.
func (c *checker) find(s *scratch, comp []int32, in restrict, sub []int32, sr search, budget *int, truncated *bool) ([]int32, []Rel) {
	subs := c.g.sccs(s, comp, sr.start|sr.back, in)
	for _, v := range comp {
		sub[v] = s.comp[v]
	}
	for si, sc := range subs {
		r := restrict{sub, int32(si)}
		for _, u := range sc {
			for e := c.g.start[u]; e < c.g.start[u+1]; e++ {
				v := c.g.to[e]
				if c.g.rel[e]&sr.start == 0 || !r.ok(v) {
					continue
				}
				if *budget <= 0 {
					*truncated = true
					return nil, nil
				}
				p := c.g.path(s, v, u, sr.back, r, budget, truncated)
				if p == nil {
					if !sr.tryAll {
						break
					}
					continue
				}
				cyc := append([]int32{u, v}, p[:len(p)-1]...)
				return cyc, c.labelsOf(cyc, sr.back, sr.start)
			}
		}
	}
	return nil, nil
}

// labelsOf explains each edge of cycle cyc as one kind: the first as
// first (when not 0), the others among mask.
func (c *checker) labelsOf(cyc []int32, mask, first Rel) []Rel {
	labels := make([]Rel, len(cyc))
	for i, u := range cyc {
		v := cyc[(i+1)%len(cyc)]
		if i == 0 && first != 0 {
			labels[i] = first
			continue
		}
		labels[i] = c.g.relOf(u, v).first(mask)
	}
	return labels
}

// classify names a cycle by its edges' kinds: Adya's types by the
// anti-dependencies in it, with -realtime or -process when it needs that
// order.
func classify(labels []Rel) string {
	var rw, wr, rt, proc int
	adjacent := false
	for i, l := range labels {
		switch l {
		case RW:
			rw++
			if labels[(i+1)%len(labels)] == RW {
				adjacent = true
			}
		case WR:
			wr++
		case Realtime:
			rt++
		case Process:
			proc++
		}
	}
	var t string
	switch {
	case rw == 0 && wr == 0:
		t = G0
	case rw == 0:
		t = G1c
	case rw == 1:
		t = GSingle
	case adjacent:
		t = G2Item
	default:
		t = GNonadjacent
	}
	switch {
	case rt > 0:
		t += RealtimeSuffix
	case proc > 0:
		t += ProcessSuffix
	}
	return t
}

func (c *checker) addCycle(t string, cyc []int32, labels []Rel) {
	// Start at the earliest transaction, so the same cycle reads the same
	// however it was found.
	first := slices.Index(cyc, slices.Min(cyc))
	cyc = append(slices.Clone(cyc[first:]), cyc[:first]...)
	labels = append(slices.Clone(labels[first:]), labels[:first]...)
	a := Anomaly{Type: t}
	if c.rep.Counts[t] < c.opts.MaxShown {
		for i, u := range cyc {
			v := cyc[(i+1)%len(cyc)]
			a.Txns = append(a.Txns, int(u))
			key, why := c.explain(u, v, labels[i])
			a.Steps = append(a.Steps, Step{From: int(u), To: int(v), Rel: labels[i], Key: key, Why: why})
		}
	}
	c.add(a)
}
