package elle

import (
	"slices"
	"strings"
)

// Rel is a set of dependency kinds: one edge of the graph may be several.
type Rel uint8

const (
	// WW: the second transaction installed the version after the first's.
	WW Rel = 1 << iota
	// WR: the second read what the first wrote.
	WR
	// RW: the second overwrote what the first read (anti-dependency).
	RW
	// Process: the same process ran the first, then the second.
	Process
	// Realtime: the first completed before the second was invoked.
	Realtime

	data = WW | WR | RW
	all  = data | Process | Realtime
)

// relOrder is the order in which an edge of several kinds is explained:
// data before order, and the kinds that make a weaker anomaly first.
var relOrder = []Rel{WW, WR, RW, Process, Realtime}

func (r Rel) String() string {
	var parts []string
	for _, k := range relOrder {
		if r&k != 0 {
			parts = append(parts, map[Rel]string{WW: "ww", WR: "wr", RW: "rw", Process: "process", Realtime: "realtime"}[k])
		}
	}
	return strings.Join(parts, "|")
}

// first is the kind an edge of kinds r is explained as, among mask.
func (r Rel) first(mask Rel) Rel {
	for _, k := range relOrder {
		if r&mask&k != 0 {
			return k
		}
	}
	return 0
}

type edge struct {
	from, to int32
	rel      Rel
}

// graph is the dependency graph in compressed rows: the edges out of v are
// to[start[v]:start[v+1]], each to a distinct vertex, with their kinds in
// rel.
type graph struct {
	start []int32
	to    []int32
	rel   []Rel
}

// buildGraph makes the graph of n vertices from edges, merging the edges
// between the same two vertices into one of all their kinds.
func buildGraph(n int, edges []edge) *graph {
	g := &graph{start: make([]int32, n+1)}
	for _, e := range edges {
		g.start[e.from+1]++
	}
	for v := 0; v < n; v++ {
		g.start[v+1] += g.start[v]
	}
	g.to = make([]int32, len(edges))
	g.rel = make([]Rel, len(edges))
	fill := slices.Clone(g.start[:n])
	for _, e := range edges {
		i := fill[e.from]
		g.to[i], g.rel[i] = e.to, e.rel
		fill[e.from]++
	}
	// Sort each row by target and merge duplicates, compacting in place.
	type pair struct {
		to  int32
		rel Rel
	}
	var row []pair
	w := int32(0)
	for v := 0; v < n; v++ {
		lo, hi := g.start[v], g.start[v+1]
		row = row[:0]
		for i := lo; i < hi; i++ {
			row = append(row, pair{g.to[i], g.rel[i]})
		}
		slices.SortFunc(row, func(a, b pair) int { return int(a.to - b.to) })
		g.start[v] = w
		for i, p := range row {
			if i > 0 && row[i-1].to == p.to {
				g.rel[w-1] |= p.rel
				continue
			}
			g.to[w], g.rel[w] = p.to, p.rel
			w++
		}
	}
	g.start[n] = w
	g.to, g.rel = g.to[:w], g.rel[:w]
	return g
}

func (g *graph) n() int         { return len(g.start) - 1 }
func (g *graph) edgeCount() int { return len(g.to) }

// relOf is the kinds of the edge u→v, 0 if none.
func (g *graph) relOf(u, v int32) Rel {
	row := g.to[g.start[u]:g.start[u+1]]
	if i, ok := slices.BinarySearch(row, v); ok {
		return g.rel[g.start[u]+int32(i)]
	}
	return 0
}

// scratch is per-search state sized to the graph, reused across searches
// by stamping instead of clearing.
type scratch struct {
	stamp  []int32
	cur    int32
	index  []int32
	low    []int32
	parent []int32
	onStk  []bool
	// comp is the component of each vertex in the last sccs call whose
	// stamp matches.
	comp []int32
}

func newScratch(n int) *scratch {
	return &scratch{stamp: make([]int32, n), index: make([]int32, n), low: make([]int32, n),
		parent: make([]int32, n), onStk: make([]bool, n), comp: make([]int32, n)}
}

// restrict says which vertices a search may visit: those whose id in
// ids is id; nil ids means all.
type restrict struct {
	ids []int32
	id  int32
}

func (r restrict) ok(v int32) bool { return r.ids == nil || r.ids[v] == r.id }

// sccs returns the strongly connected components of more than one vertex
// of the subgraph of edges in mask among verts (inside r), and leaves each
// vertex's component number in s.comp (-1 for those in no such
// component). It is Tarjan's algorithm, iterative.
func (g *graph) sccs(s *scratch, verts []int32, mask Rel, r restrict) [][]int32 {
	s.cur++
	stamp := s.cur
	var (
		out   [][]int32
		stack []int32
		next  int32
		// call frames: vertex and position in its row
		frames []struct{ v, i int32 }
	)
	for _, v := range verts {
		s.comp[v] = -1
	}
	for _, root := range verts {
		if s.stamp[root] == stamp {
			continue
		}
		visit := func(v int32) {
			s.stamp[v] = stamp
			s.index[v], s.low[v] = next, next
			next++
			stack = append(stack, v)
			s.onStk[v] = true
			frames = append(frames, struct{ v, i int32 }{v, g.start[v]})
		}
		visit(root)
		for len(frames) > 0 {
			f := &frames[len(frames)-1]
			v := f.v
			if f.i < g.start[v+1] {
				i := f.i
				f.i++
				w := g.to[i]
				if g.rel[i]&mask == 0 || !r.ok(w) {
					continue
				}
				if s.stamp[w] != stamp {
					visit(w)
				} else if s.onStk[w] && s.index[w] < s.low[v] {
					s.low[v] = s.index[w]
				}
				continue
			}
			frames = frames[:len(frames)-1]
			if len(frames) > 0 {
				p := frames[len(frames)-1].v
				if s.low[v] < s.low[p] {
					s.low[p] = s.low[v]
				}
			}
			if s.low[v] == s.index[v] {
				k := len(stack) - 1
				for stack[k] != v {
					k--
				}
				comp := slices.Clone(stack[k:])
				for _, w := range comp {
					s.onStk[w] = false
				}
				stack = stack[:k]
				if len(comp) > 1 {
					slices.Sort(comp)
					for _, w := range comp {
						s.comp[w] = int32(len(out))
					}
					out = append(out, comp)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b []int32) int { return int(a[0] - b[0]) })
	for i, c := range out {
		for _, w := range c {
			s.comp[w] = int32(i)
		}
	}
	return out
}

// path is the shortest path from src to dst over edges in mask inside r
// (breadth first), as the vertices after src, ending with dst (src == dst
// finds the shortest cycle through src); nil if
// there is none. Each edge looked at costs one of *budget; a search that
// runs out returns nil and sets *out.
func (g *graph) path(s *scratch, src, dst int32, mask Rel, r restrict, budget *int, out *bool) []int32 {
	s.cur++
	stamp := s.cur
	s.stamp[src] = stamp
	queue := []int32{src}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for i := g.start[v]; i < g.start[v+1]; i++ {
			*budget--
			if *budget < 0 {
				*out = true
				return nil
			}
			w := g.to[i]
			if g.rel[i]&mask == 0 || !r.ok(w) {
				continue
			}
			if w == dst {
				// dst may be src itself: the path is then a cycle.
				p := []int32{dst}
				for x := v; x != src; x = s.parent[x] {
					p = append(p, x)
				}
				slices.Reverse(p)
				return p
			}
			if s.stamp[w] == stamp {
				continue
			}
			s.stamp[w] = stamp
			s.parent[w] = v
			queue = append(queue, w)
		}
	}
	return nil
}
