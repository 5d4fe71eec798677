package elle

import (
	"cmp"
	"fmt"
	"slices"
)

// checker is one check's state.
type checker struct {
	txns  []Txn
	opts  Options
	model Model
	rep   *Report
	keys  map[string]*keyInfo
	// names keeps the keys in first-seen order, so output is deterministic.
	names []string
	edges []edge
	g     *graph
}

// keyInfo is what is known of one key.
type keyInfo struct {
	name string
	// writer names the ok or info transaction behind each element
	// appended or value written; failed the failed one.
	writer, failed map[int64]int32
	// interm marks elements or values that were not their transaction's
	// last write of the key.
	interm map[int64]bool

	// List-append: order is the longest list read (the version order),
	// pos each element's place in it; reads are the ok reads of the key.
	order []int64
	pos   map[int64]int
	reads []readRef

	// Register: readers of each value (0: of the initial state), and the
	// version order's edges.
	readers map[int64][]int32
	next    map[int64][]int64
}

type readRef struct {
	txn int32
	mop int32
}

func (c *checker) key(name string) *keyInfo {
	if c.keys == nil {
		c.keys = map[string]*keyInfo{}
	}
	k, ok := c.keys[name]
	if !ok {
		k = &keyInfo{name: name, writer: map[int64]int32{}, failed: map[int64]int32{}, interm: map[int64]bool{}}
		if c.opts.Workload == Register {
			k.readers, k.next = map[int64][]int32{}, map[int64][]int64{}
		}
		c.keys[name] = k
		c.names = append(c.names, name)
	}
	return k
}

func (c *checker) edge(from, to int32, rel Rel) {
	if from != to {
		c.edges = append(c.edges, edge{from, to, rel})
	}
}

// indexWrites fills each key's writer, failed and interm maps from the
// mops of kind w. A value written twice breaks the inference (a read
// could not name its writer), so it is an error, not an anomaly.
func (c *checker) indexWrites(w Kind) error {
	for i, t := range c.txns {
		for j, m := range t.Mops {
			if m.Kind != w {
				continue
			}
			if m.Value == 0 && w == Write {
				return fmt.Errorf("T%d writes 0 to %s: 0 stands for no value; write values must be non-zero", t.ID, m.Key)
			}
			k := c.key(m.Key)
			if t.Status == Fail {
				k.failed[m.Value] = int32(i)
			} else {
				if prev, dup := k.writer[m.Value]; dup {
					return fmt.Errorf("%d is written to %s by both T%d and T%d: the values written to a key must be unique for the check to name each read's writer",
						m.Value, m.Key, c.txns[prev].ID, t.ID)
				}
				k.writer[m.Value] = int32(i)
			}
			for _, later := range t.Mops[j+1:] {
				if later.Kind == w && later.Key == m.Key {
					k.interm[m.Value] = true
					break
				}
			}
		}
	}
	c.rep.Keys = len(c.keys)
	return nil
}

// checkWriter reports a committed read by r of value v of k that no
// transaction wrote, or that an aborted one did.
func (c *checker) checkWriter(k *keyInfo, r int32, v int64, seen string) {
	if _, ok := k.writer[v]; ok {
		return
	}
	if f, ok := k.failed[v]; ok {
		c.add(Anomaly{Type: G1a, Key: k.name, Txns: []int{int(f), int(r)},
			Why: fmt.Sprintf("T%d read %s of %s, but %d was written by T%d, which failed", c.txns[r].ID, seen, k.name, v, c.txns[f].ID)})
		return
	}
	c.add(Anomaly{Type: Garbage, Key: k.name, Txns: []int{int(r)},
		Why: fmt.Sprintf("T%d read %s of %s, but no transaction wrote %d", c.txns[r].ID, seen, k.name, v)})
}

// checkIntermediate reports a committed read by r whose last value v of k
// was another transaction's intermediate write of k.
func (c *checker) checkIntermediate(k *keyInfo, r int32, v int64, seen string) {
	if w, ok := k.writer[v]; ok && w != r && k.interm[v] {
		c.add(Anomaly{Type: G1b, Key: k.name, Txns: []int{int(w), int(r)},
			Why: fmt.Sprintf("T%d read %s of %s, but %d was not T%d's last write of %s", c.txns[r].ID, seen, k.name, v, c.txns[w].ID, k.name)})
	}
}

// inferAppend builds the data edges of a list-append history.
func (c *checker) inferAppend() error {
	if err := c.indexWrites(Append); err != nil {
		return err
	}
	for i, t := range c.txns {
		if t.Status != OK {
			continue // an info read is unknown; a failed one saw nothing
		}
		for j, m := range t.Mops {
			if m.Kind != Read {
				continue
			}
			k := c.key(m.Key)
			k.reads = append(k.reads, readRef{int32(i), int32(j)})
			if len(m.List) > len(k.order) {
				k.order = m.List
			}
		}
		c.internalAppend(int32(i))
	}
	for _, name := range c.names {
		c.appendKey(c.keys[name])
	}
	return nil
}

// appendKey infers k's version order from its longest read and adds the
// edges it implies.
func (c *checker) appendKey(k *keyInfo) {
	k.pos = make(map[int64]int, len(k.order))
	for p, e := range k.order {
		if _, dup := k.pos[e]; dup {
			// The longest read repeats an element: the order is what comes
			// before the repeat; the read itself is reported below.
			k.order = k.order[:p:p]
			break
		}
		k.pos[e] = p
	}
	// Elements appended by ok transactions that no read saw come after
	// everything seen; those of info transactions may never have happened
	// and, unseen, can be on no cycle, so they get no edges.
	var unread []int64
	for e, w := range k.writer {
		if _, seen := k.pos[e]; !seen && c.txns[w].Status == OK {
			unread = append(unread, e)
		}
	}
	slices.Sort(unread)

	checked := 0 // elements of the order already checked for G1a and garbage
	incompatible := false
	for _, rr := range k.reads {
		l := c.list(rr)
		if !isPrefix(l, k.order) {
			if hasDuplicate(l) {
				c.duplicate(k, rr)
			} else if !incompatible {
				incompatible = true
				c.add(Anomaly{Type: Incompatible, Key: k.name, Txns: []int{int(rr.txn)},
					Why: fmt.Sprintf("T%d read %s of %s, which is not a prefix of %s, the longest read of it: no single order of appends explains both",
						c.txns[rr.txn].ID, listString(l), k.name, listString(k.order))})
			}
			for _, e := range l {
				c.checkWriter(k, rr.txn, e, listString(l))
			}
			continue
		}
		for ; checked < len(l); checked++ {
			c.checkWriter(k, rr.txn, l[checked], listString(l))
		}
		if len(l) > 0 {
			last := l[len(l)-1]
			if w, ok := k.writer[last]; ok {
				c.checkIntermediate(k, rr.txn, last, listString(l))
				c.edge(w, rr.txn, WR)
			}
		}
		// rw: whoever appended the next element overwrote what this read saw.
		if len(l) < len(k.order) {
			if w, ok := k.writer[k.order[len(l)]]; ok {
				c.edge(rr.txn, w, RW)
			}
		} else {
			for _, e := range unread {
				c.edge(rr.txn, k.writer[e], RW)
			}
		}
	}
	for p := 1; p < len(k.order); p++ {
		a, aok := k.writer[k.order[p-1]]
		b, bok := k.writer[k.order[p]]
		if aok && bok {
			c.edge(a, b, WW)
		}
	}
	if n := len(k.order); n > 0 {
		if a, ok := k.writer[k.order[n-1]]; ok {
			for _, e := range unread {
				c.edge(a, k.writer[e], WW)
			}
		}
	}
}

func (c *checker) list(rr readRef) []int64 { return c.txns[rr.txn].Mops[rr.mop].List }

func (c *checker) duplicate(k *keyInfo, rr readRef) {
	l := c.list(rr)
	c.add(Anomaly{Type: Duplicate, Key: k.name, Txns: []int{int(rr.txn)},
		Why: fmt.Sprintf("T%d read %s of %s, which holds an element twice: each append happens once", c.txns[rr.txn].ID, listString(l), k.name)})
}

func isPrefix(l, of []int64) bool { return len(l) <= len(of) && slices.Equal(l, of[:len(l)]) }

func hasDuplicate(l []int64) bool {
	seen := make(map[int64]bool, len(l))
	for _, e := range l {
		if seen[e] {
			return true
		}
		seen[e] = true
	}
	return false
}

// keyState is what a transaction knows of one key part way through.
type keyState struct {
	key      string
	known    bool    // list is the whole value
	list     []int64 // the whole value, or (not known) what it appended so far
	lastRead int
}

// internalAppend reports a read of transaction i that contradicts what
// the same transaction read or appended before it.
func (c *checker) internalAppend(i int32) {
	t := c.txns[i]
	var st []keyState
	for j, m := range t.Mops {
		k := slices.IndexFunc(st, func(s keyState) bool { return s.key == m.Key })
		if k < 0 {
			st = append(st, keyState{key: m.Key, lastRead: -1})
			k = len(st) - 1
		}
		s := &st[k]
		switch m.Kind {
		case Append:
			s.list = append(slices.Clip(s.list), m.Value)
		case Read:
			bad := s.known && !slices.Equal(m.List, s.list) ||
				!s.known && len(s.list) > 0 && !hasSuffix(m.List, s.list)
			if bad {
				want := "make it " + listString(s.list)
				if !s.known {
					want = "make it end in " + listString(s.list)
				}
				c.add(Anomaly{Type: Internal, Key: m.Key, Txns: []int{int(i)},
					Why: fmt.Sprintf("T%d's mop %d read %s of %s, but its own earlier mops %s", t.ID, j+1, listString(m.List), m.Key, want)})
			}
			s.known, s.list = true, m.List
		}
	}
}

func hasSuffix(l, suf []int64) bool {
	return len(l) >= len(suf) && slices.Equal(l[len(l)-len(suf):], suf)
}

// inferRegister builds the data edges of a register history. The version
// order of each key is partly known: the initial state (no value) comes
// before every value, and a committed transaction that read v and then
// wrote v' put v' after v.
func (c *checker) inferRegister() error {
	if err := c.indexWrites(Write); err != nil {
		return err
	}
	for i, t := range c.txns {
		if t.Status != OK {
			continue
		}
		type state struct {
			key     string
			read    bool  // read before writing: an external read
			wrote   bool  // wrote it
			value   int64 // what it holds now, as far as the txn knows
			extRead int64
		}
		var st []state
		for j, m := range t.Mops {
			x := slices.IndexFunc(st, func(s state) bool { return s.key == m.Key })
			if x < 0 {
				st = append(st, state{key: m.Key})
				x = len(st) - 1
			}
			s := &st[x]
			k := c.key(m.Key)
			switch m.Kind {
			case Write:
				if s.read && !s.wrote && s.extRead != m.Value {
					k.next[s.extRead] = append(k.next[s.extRead], m.Value)
				}
				s.wrote, s.value = true, m.Value
			case Read:
				switch {
				case s.wrote || s.read:
					if m.Value != s.value {
						c.add(Anomaly{Type: Internal, Key: m.Key, Txns: []int{i},
							Why: fmt.Sprintf("T%d's mop %d read %s = %s, but its own earlier mops make it %s", t.ID, j+1, m.Key, valueString(m.Value), valueString(s.value))})
					}
				default:
					s.read, s.extRead, s.value = true, m.Value, m.Value
					k.readers[m.Value] = append(k.readers[m.Value], int32(i))
					if m.Value != 0 {
						c.checkWriter(k, int32(i), m.Value, valueString(m.Value))
						c.checkIntermediate(k, int32(i), m.Value, valueString(m.Value))
						if w, ok := k.writer[m.Value]; ok {
							c.edge(w, int32(i), WR)
						}
					}
				}
			}
		}
	}
	for _, name := range c.names {
		c.registerKey(c.keys[name])
	}
	return nil
}

// registerKey adds the ww and rw edges of k's known version order.
func (c *checker) registerKey(k *keyInfo) {
	if scc := versionCycle(k.next); scc != nil {
		c.add(Anomaly{Type: CyclicVersion, Key: k.name,
			Why: fmt.Sprintf("the reads and writes of %s put its versions %s in a cycle: each was read, then overwritten by the next", k.name, listString(scc))})
		k.next = map[int64][]int64{}
	}
	hasPred := map[int64]bool{}
	for _, vs := range k.next {
		for _, v := range vs {
			hasPred[v] = true
		}
	}
	// The initial state precedes every value; directly so only those with
	// no other known predecessor. An info write no one read may never have
	// happened and can be on no cycle.
	values := make([]int64, 0, len(k.writer))
	for v, w := range k.writer {
		if !hasPred[v] && (c.txns[w].Status == OK || len(k.readers[v]) > 0) {
			values = append(values, v)
		}
	}
	slices.Sort(values)
	k.next[0] = append(k.next[0], values...)
	froms := make([]int64, 0, len(k.next))
	for v := range k.next {
		froms = append(froms, v)
	}
	slices.Sort(froms)
	for _, v1 := range froms {
		for _, v2 := range k.next[v1] {
			w2, ok := k.writer[v2]
			if !ok {
				continue
			}
			if w1, ok := k.writer[v1]; ok && v1 != 0 {
				c.edge(w1, w2, WW)
			}
			for _, r := range k.readers[v1] {
				c.edge(r, w2, RW)
			}
		}
	}
}

// versionCycle returns the values on a cycle of the version graph next,
// or nil when it has none.
func versionCycle(next map[int64][]int64) []int64 {
	const (
		white = iota
		grey
		black
	)
	color := map[int64]int{}
	var stack []int64
	var found []int64
	var visit func(v int64) bool
	visit = func(v int64) bool {
		color[v] = grey
		stack = append(stack, v)
		for _, w := range next[v] {
			switch color[w] {
			case grey:
				i := slices.Index(stack, w)
				found = slices.Clone(stack[i:])
				return true
			case white:
				if visit(w) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[v] = black
		return false
	}
	roots := make([]int64, 0, len(next))
	for v := range next {
		roots = append(roots, v)
	}
	slices.Sort(roots)
	for _, v := range roots {
		if color[v] == white && visit(v) {
			return found
		}
	}
	return nil
}

// processEdges links each process's committed transactions in the order
// it ran them.
func (c *checker) processEdges() {
	var ok []int32
	for i, t := range c.txns {
		if t.Status == OK {
			ok = append(ok, int32(i))
		}
	}
	slices.SortFunc(ok, func(a, b int32) int {
		ta, tb := c.txns[a], c.txns[b]
		return cmp.Or(cmp.Compare(ta.Process, tb.Process), cmp.Compare(ta.Invoke, tb.Invoke), cmp.Compare(a, b))
	})
	for i := 1; i < len(ok); i++ {
		if c.txns[ok[i-1]].Process == c.txns[ok[i]].Process {
			c.edge(ok[i-1], ok[i], Process)
		}
	}
}

// realtimeEdges links a to b when a committed before b was invoked,
// keeping only a transitive reduction: a frontier holds the committed
// transactions nothing later has yet been ordered after; each invocation
// is linked from the whole frontier, and each commit replaces in the
// frontier those its invocation was linked from. The edges are then
// O(transactions × concurrency). Info transactions only receive edges:
// they have no commit time to be ordered by; failed ones get none.
func (c *checker) realtimeEdges() {
	type ev struct {
		time   int64
		commit bool
		txn    int32
	}
	evs := make([]ev, 0, 2*len(c.txns))
	for i, t := range c.txns {
		if t.Status == Fail {
			continue // no data edges: it can be on no cycle
		}
		evs = append(evs, ev{t.Invoke, false, int32(i)})
		if t.Status == OK {
			evs = append(evs, ev{t.Complete, true, int32(i)})
		}
	}
	// At equal times invocations come first: "before" is strict.
	slices.SortFunc(evs, func(a, b ev) int {
		if a.time != b.time {
			return cmp.Compare(a.time, b.time)
		}
		if a.commit != b.commit {
			if a.commit {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.txn, b.txn)
	})
	frontier := map[int32]bool{}
	linked := map[int32][]int32{} // open ok txn -> the frontier at its invocation
	var front []int32
	for _, e := range evs {
		if !e.commit {
			front = front[:0]
			for f := range frontier {
				front = append(front, f)
			}
			slices.Sort(front)
			for _, f := range front {
				c.edge(f, e.txn, Realtime)
			}
			if c.txns[e.txn].Status == OK {
				linked[e.txn] = slices.Clone(front)
			}
			continue
		}
		for _, f := range linked[e.txn] {
			delete(frontier, f)
		}
		delete(linked, e.txn)
		frontier[e.txn] = true
	}
}

// listString writes a list as [1 2 3]; a long one keeps its first and
// last elements and says how many there are, since the evidence is about
// its ends.
func listString(l []int64) string {
	b := []byte{'['}
	for i, e := range l {
		if len(l) > 8 && i == 2 {
			b = fmt.Appendf(b, " …")
		}
		if len(l) > 8 && i >= 2 && i < len(l)-3 {
			continue
		}
		if i > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%d", e)
	}
	b = append(b, ']')
	if len(l) > 8 {
		b = fmt.Appendf(b, " (%d elements)", len(l))
	}
	return string(b)
}

func valueString(v int64) string {
	if v == 0 {
		return "nil"
	}
	return fmt.Sprint(v)
}
