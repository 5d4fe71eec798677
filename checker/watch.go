package checker

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// WatchChecker is the name in Result.Checker.
const WatchChecker = "watch"

// Operation names of the watch workload (workloads/watch.go records them).
// Each logical watcher runs on its own process: watch-open opens one
// session (a Watch call) and completes with the created notification; each
// watch-recv waits for the next response and completes with its events or
// progress revision, or fails when the session ends. The writers' puts,
// deletes and multi-key txns and the final read of the prefix give the
// checker the writes and the final state. WatchPrefix is where the
// workload writes.
const (
	WatchOpen   = "watch-open"
	WatchRecv   = "watch-recv"
	WatchPut    = "watch-put"
	WatchDelete = "watch-delete"
	WatchTxn    = "watch-txn"
	WatchRead   = "watch-read"
	WatchPrefix = "/watch/"
)

// isWatchWrite reports whether f names one of the watch workload's writes.
func isWatchWrite(f string) bool { return f == WatchPut || f == WatchDelete || f == WatchTxn }

// Watch checks every watch stream of the watch workload against etcd's
// watch guarantees, using only the history:
//
//   - ordered: revisions only go up within a session;
//   - unique: no (revision, key) delivered twice;
//   - atomic: all events of one revision arrive in one response;
//   - reliable: no event missing between a session's start revision and
//     the last revision it covered (its last event or progress
//     notification), compared with every event the history establishes:
//     acknowledged writes, what any watcher delivered, the final read;
//   - resumable: a reopened watch starts exactly at the revision asked for
//     (nothing before it, nothing skipped), and the logical watcher has no
//     gap between sessions;
//   - prev_kv is the key's previous value, create and modify flags agree
//     with the key's history (version 1 is a create);
//   - no event from the future (past every revision the history
//     acknowledged, allowing one per operation of unknown outcome), no
//     event of a failed write, no event whose value nobody wrote;
//   - progress notifications never claim a revision behind a delivered
//     event, and no event at or below a progress revision comes after it;
//   - a watcher that saw everything from revision 1 through the final read
//     agrees with the final read.
func Watch(_ context.Context, in *Input) Result {
	return checkStreams(in.Ops, streamConfig{
		checker: WatchChecker, open: WatchOpen, recv: WatchRecv, finalRead: WatchRead, prefix: WatchPrefix,
	})
}

func init() {
	known(watchWriteFacts, WatchPut, WatchTxn, WatchDelete)
	known(readFacts, WatchRead)
}

// watchWriteFacts turns the watch workload's writes into facts.
func watchWriteFacts(op *history.Op, st *streams) {
	inv, c := op.Invoke, op.Complete
	switch op.F {
	case WatchPut:
		putFacts(op, st, c.Type == history.OK)
	case WatchTxn:
		for _, kv := range inv.KVs {
			st.addValue(kv.Value, valueWrite{key: kv.Key, rev: okRev(op), typ: c.Type, op: op, describe: describeWriteOp})
			if c.Type == history.OK {
				st.addPut(op, kv.Key, kv.Value, c.Revision)
			}
		}
		if c.Type == history.OK {
			st.wholly(c.Revision)
		}
	case WatchDelete:
		if c.Type == history.OK && c.Deleted > 0 {
			st.addDelete(op, inv.Key, c.Revision)
			st.wholly(c.Revision)
		}
	}
}

func okRev(op *history.Op) int64 {
	if op.Type() == history.OK {
		return op.Complete.Revision
	}
	return 0
}

func describeWriteOp(op history.Op) string {
	s := fmt.Sprintf("%s by process %d at %s", op.F, op.Process, seconds(op.Invoke.Time))
	if op.Type() != history.OK {
		s += " (" + string(op.Type()) + ")"
	} else if op.Complete.Revision > 0 {
		s += fmt.Sprintf(" (ok, revision %d)", op.Complete.Revision)
	}
	return s
}

// streamConfig says which operations of a history are watch sessions and
// which is the final read; every other operation is evidence of what the
// keyspace went through (see opFacts).
type streamConfig struct {
	checker    string
	open, recv string
	finalRead  string
	prefix     string
	// initial gives the revision a watcher's view starts from and its
	// state just before (an informer's list); nil means revision 1 and
	// nothing.
	initial func(watch string) (from int64, view map[string]history.KV, ok bool)
}

// fact is one event the history establishes: revision rev changed key.
type fact struct {
	rev    int64
	key    string
	ev     history.WatchEvent
	source fmt.Stringer
	// full means all KV fields are known (from a watch event or a read),
	// not only type and value (from a write).
	full bool
}

type factKey struct {
	rev int64
	key string
}

// valueWrite is a write of one unique value.
type valueWrite struct {
	key      string
	rev      int64 // response revision when ok
	typ      history.Type
	op       *history.Op
	describe func(history.Op) string
	// alone marks a plain put: wherever its value turns up, it was the
	// only change at that revision.
	alone bool
}

func (w valueWrite) String() string { return w.describe(*w.op) }

// opSource names the operation a fact comes from; the text is only made
// when a fact becomes evidence.
type opSource struct {
	op       *history.Op
	describe func(history.Op) string
}

func (o opSource) String() string { return o.describe(*o.op) }

// textSource is a fact's source in words.
type textSource string

func (t textSource) String() string { return string(t) }

// eventSource is the watch response a fact was delivered in.
type eventSource struct {
	s *session
	t int64
}

func (e eventSource) String() string {
	return fmt.Sprintf("%s (response at %s)", e.s.name(), seconds(e.t))
}

// eventLoc is where in a session an event was delivered.
type eventLoc struct {
	s      *session
	ri, ei int
	t      int64
	rev    int64
	key    string
}

func (l eventLoc) String() string {
	return fmt.Sprintf("%s: event %d of response %d (at %s), revision %d key %s", l.s.name(), l.ei+1, l.ri+1, seconds(l.t), l.rev, quoteKey(l.key))
}

// session is one Watch call of a logical watcher.
type session struct {
	watch    string
	n        int
	process  history.Process
	key, end string
	start    int64
	prevKV   bool
	progress bool
	opened   int64 // time
	created  int64 // created notification's header revision
	resps    []watchResp
	compact  int64
	endErr   string
}

type watchResp struct {
	time     int64
	rev      int64
	progress bool
	events   []history.WatchEvent
}

// effectiveStart is the first revision the session must deliver: the
// requested one, or the created revision + 1 for a watch from now. 0 when
// unknown.
func (s *session) effectiveStart() int64 {
	if s.start > 0 {
		return s.start
	}
	if s.created > 0 {
		return s.created + 1
	}
	return 0
}

func (s *session) name() string {
	return fmt.Sprintf("watch %s session %d (process %d, %s from revision %s)", s.watch, s.n, s.process, describeRange(s.key, s.end), startText(s))
}

func startText(s *session) string {
	if s.start > 0 {
		return fmt.Sprint(s.start)
	}
	if s.created > 0 {
		return fmt.Sprintf("now=%d", s.created+1)
	}
	return "now"
}

func describeRange(key, end string) string {
	switch {
	case end == "":
		return "key " + quoteKey(key)
	case allKeys(key, end):
		return "all keys"
	case end == "\x00":
		return "keys from " + quoteKey(key)
	default:
		return fmt.Sprintf("range [%s, %s)", quoteKey(key), quoteKey(end))
	}
}

// allKeys reports whether [key, end) is the whole keyspace.
func allKeys(key, end string) bool { return end == "\x00" && (key == "\x00" || key == "") }

func quoteKey(k string) string { return fmt.Sprintf("%q", k) }

func inRange(k, key, end string) bool {
	switch end {
	case "":
		return k == key
	case "\x00":
		return k >= key
	default:
		return k >= key && k < end
	}
}

// anomalies collects evidence, keeping at most a few per kind so that a
// broken store does not produce a million lines.
type anomalies struct {
	list   []string
	counts map[string]int
	order  []string
}

const anomaliesPerKind = 10

func (a *anomalies) add(kind, format string, args ...any) {
	if a.counts == nil {
		a.counts = map[string]int{}
	}
	if a.counts[kind] == 0 {
		a.order = append(a.order, kind)
	}
	a.counts[kind]++
	if a.counts[kind] <= anomaliesPerKind {
		a.list = append(a.list, kind+": "+fmt.Sprintf(format, args...))
	}
}

func (a *anomalies) summary() string {
	var parts []string
	for _, k := range a.order {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, a.counts[k]))
	}
	return strings.Join(parts, ", ")
}

func (a *anomalies) result(res *Result) {
	res.Anomalies = a.list
	for _, k := range a.order {
		if n := a.counts[k]; n > anomaliesPerKind {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: %d more not shown", k, n-anomaliesPerKind))
		}
	}
}

// streams is the state of one stream check: the facts, the sessions and
// what was found.
type streams struct {
	cfg      streamConfig
	facts    map[factKey]*fact
	sorted   []*fact            // by revision, then key
	byKey    map[string][]*fact // by revision
	deletes  map[string][]*fact // the deletes of byKey
	values   map[string]valueWrite
	sessions []*session
	watchers [][]*session // sessions per logical watcher, in order
	bound    int64        // no event may be past it
	maxAck   int64
	unknowns int // operations of unknown outcome, and leased keys that may expire
	leased   int
	final    *history.Op
	compact  bool // a compaction happened: prev_kv may be missing
	found    anomalies
	nEvents  int
	// whole lists revisions one known operation wrote, all of whose
	// changes are facts.
	whole []int64
	// known is every revision whose changes are all facts: the whole ones
	// and those a watcher of the whole keyspace covered.
	known revisions
	// views is what each logical watcher covered, for the keys it watched.
	views []view
	// unsure counts events whose create flag or prev_kv could not be
	// compared with the key's previous event, because the history does not
	// show all that happened to the key in between.
	unsure int
	// finalChecked counts the watchers compared with the final read.
	finalChecked int
}

func newStreams(cfg streamConfig) *streams {
	return &streams{cfg: cfg, facts: map[factKey]*fact{}, byKey: map[string][]*fact{}, deletes: map[string][]*fact{}, values: map[string]valueWrite{}}
}

// addFact records what some source says happened at (rev, key), reporting
// a conflict with what another source said.
func (st *streams) addFact(f fact) {
	k := factKey{f.rev, f.key}
	old, ok := st.facts[k]
	if !ok {
		nf := f
		st.facts[k] = &nf
		return
	}
	if diff := factDiff(old, &f); diff != "" {
		st.found.add("inconsistent", "revision %d key %s: %s says %s, but %s says %s",
			f.rev, quoteKey(f.key), old.source, describeEvent(old.ev), f.source, describeEvent(f.ev))
		return
	}
	if f.full && !old.full {
		nf := f
		st.facts[k] = &nf
	}
}

func factDiff(a, b *fact) string {
	if a.ev.Type != b.ev.Type {
		return "type"
	}
	if a.ev.Type == "delete" {
		return ""
	}
	if a.ev.KV.Value != b.ev.KV.Value {
		return "value"
	}
	if a.full && b.full && (a.ev.KV.CreateRevision != b.ev.KV.CreateRevision || a.ev.KV.Version != b.ev.KV.Version) {
		return "kv"
	}
	return ""
}

func describeEvent(e history.WatchEvent) string {
	if e.Type == "delete" {
		return fmt.Sprintf("delete of %s", quoteKey(e.KV.Key))
	}
	s := fmt.Sprintf("put %s=%q", quoteKey(e.KV.Key), e.KV.Value)
	if e.KV.Version > 0 {
		s += fmt.Sprintf(" (create_revision %d, version %d)", e.KV.CreateRevision, e.KV.Version)
	}
	return s
}

func describeKV(kv *history.KV) string {
	if kv == nil {
		return "none"
	}
	return fmt.Sprintf("%q (mod_revision %d, create_revision %d, version %d)", kv.Value, kv.ModRevision, kv.CreateRevision, kv.Version)
}

// parse reads the sessions, facts and bounds out of the history.
func (st *streams) parse(ops []history.Op) {
	current := map[string]*session{}
	perWatch := map[string]int{}
	var watchOrder []string
	for i := range ops {
		op := &ops[i]
		c := op.Complete
		if c.CompactRevision > 0 || strings.Contains(op.F, "compact") {
			st.compact = true
		}
		switch op.F {
		case st.cfg.open, st.cfg.recv:
		default:
			if c.Type == history.OK && c.Revision > st.maxAck {
				st.maxAck = c.Revision
			}
			if c.Type == history.Info {
				st.unknowns++
			}
			if op.Invoke.Lease != 0 && op.Invoke.F != "" && c.Type != history.Fail && strings.Contains(op.F, "put") {
				// A key attached to a lease may be deleted by the lease's
				// expiry: a revision no client operation acknowledges.
				st.leased++
			}
		}
		switch op.F {
		case st.cfg.open:
			inv := op.Invoke
			id := inv.WatchID
			if _, ok := perWatch[id]; !ok {
				watchOrder = append(watchOrder, id)
			}
			s := &session{watch: id, n: perWatch[id], process: op.Process, key: inv.Key, end: inv.RangeEnd,
				start: inv.StartRevision, prevKV: inv.PrevKV, progress: inv.ProgressNotify, opened: inv.Time}
			perWatch[id]++
			current[id] = s
			st.sessions = append(st.sessions, s)
			st.endOrRespond(s, c)
		case st.cfg.recv:
			id := op.Invoke.WatchID
			if id == "" {
				id = c.WatchID
			}
			s := current[id]
			if s == nil {
				st.found.add("malformed", "%s by process %d at %s for watch %q with no open session", op.F, op.Process, seconds(op.Invoke.Time), id)
				continue
			}
			st.endOrRespond(s, c)
		case st.cfg.finalRead:
			if c.Type == history.OK {
				st.final = op
				for _, kv := range c.KVs {
					st.addFact(fact{rev: kv.ModRevision, key: kv.Key, ev: history.WatchEvent{Type: "put", KV: kv},
						source: textSource(fmt.Sprintf("the final read at revision %d", c.Revision)), full: true})
				}
			}
		default:
			opFacts(op, st)
		}
	}
	st.unknowns += st.leased
	st.bound = st.maxAck + int64(st.unknowns)
	for _, id := range watchOrder {
		var ss []*session
		for _, s := range st.sessions {
			if s.watch == id {
				ss = append(ss, s)
			}
		}
		st.watchers = append(st.watchers, ss)
	}
	// Every delivered event is a fact too.
	for _, s := range st.sessions {
		for _, r := range s.resps {
			for _, e := range r.events {
				st.nEvents++
				st.addFact(fact{rev: e.KV.ModRevision, key: e.KV.Key, ev: history.WatchEvent{Type: e.Type, KV: e.KV},
					source: eventSource{s, r.time}, full: true})
			}
		}
	}
	for _, f := range st.facts {
		st.sorted = append(st.sorted, f)
	}
	slices.SortFunc(st.sorted, func(a, b *fact) int {
		return cmp.Or(cmp.Compare(a.rev, b.rev), cmp.Compare(a.key, b.key))
	})
	for _, f := range st.sorted {
		st.byKey[f.key] = append(st.byKey[f.key], f)
		if f.ev.Type == "delete" {
			st.deletes[f.key] = append(st.deletes[f.key], f)
		}
	}
	st.resolveUnknownPuts()
	st.cover()
}

// view is the revisions a logical watcher covered for its range of keys.
type view struct {
	key, end string
	revs     revisions
}

// cover works out which stretches of revisions the history knows
// completely: for every key, those a watcher of that key covered; for all
// keys, the revisions whole operations wrote and those a watcher of the
// whole keyspace covered.
func (st *streams) cover() {
	known := make([]revRange, 0, len(st.whole))
	for _, r := range st.whole {
		known = append(known, revRange{r, r})
	}
	for _, ss := range st.watchers {
		var rs []revRange
		for _, s := range ss {
			if start := s.effectiveStart(); start > 0 {
				rs = append(rs, revRange{start, s.covered()})
			}
		}
		s0 := ss[0]
		st.views = append(st.views, view{key: s0.key, end: s0.end, revs: mergeRevisions(rs)})
		if allKeys(s0.key, s0.end) {
			known = append(known, rs...)
		}
	}
	st.known = mergeRevisions(known)
}

// complete reports whether the history shows everything that happened to
// key after revision a and before revision b.
func (st *streams) complete(key string, a, b int64) bool {
	if st.known.covers(a+1, b-1) {
		return true
	}
	for _, v := range st.views {
		if inRange(key, v.key, v.end) && v.revs.covers(a+1, b-1) {
			return true
		}
	}
	return false
}

func (st *streams) endOrRespond(s *session, c *history.Event) {
	switch c.Type {
	case history.OK:
		switch {
		case c.Created:
			s.created = c.Revision
		default:
			s.resps = append(s.resps, watchResp{time: c.Time, rev: c.Revision, progress: c.Progress, events: c.WatchEvents})
		}
	default:
		s.endErr = c.Error
		if c.CompactRevision > 0 {
			s.compact = c.CompactRevision
		}
	}
}

// covered is the revision through which the session claims to have
// delivered everything: its last event or progress notification.
func (s *session) covered() int64 {
	c := s.effectiveStart() - 1
	for _, r := range s.resps {
		if r.progress {
			c = max(c, r.rev)
		}
		for _, e := range r.events {
			c = max(c, e.KV.ModRevision)
		}
	}
	return c
}

// checkSession checks the guarantees one session gives on its own and
// returns the revision through which it claims to have delivered
// everything.
func (st *streams) checkSession(s *session) int64 {
	start := s.effectiveStart()
	var last int64 // last event revision delivered
	var lastProgress int64
	seen := map[factKey]bool{}
	for ri, r := range s.resps {
		if r.progress {
			if r.rev < last {
				st.found.add("progress behind events", "%s: progress notification at %s says revision %d but revision %d was already delivered",
					s.name(), seconds(r.time), r.rev, last)
			}
			if r.rev > st.bound {
				st.found.add("from the future", "%s: progress notification at %s has revision %d, but the history acknowledged nothing past %d (with %d operations of unknown outcome or leased keys)",
					s.name(), seconds(r.time), r.rev, st.maxAck, st.unknowns)
			}
			lastProgress = max(lastProgress, r.rev)
			continue
		}
		for ei, e := range r.events {
			rev, key := e.KV.ModRevision, e.KV.Key
			where := eventLoc{s, ri, ei, r.time, rev, key}
			if !inRange(key, s.key, s.end) {
				st.found.add("filter", "%s: key outside the watched range", where)
			}
			fk := factKey{rev, key}
			switch {
			case seen[fk]:
				st.found.add("duplicate", "%s: delivered twice", where)
			case rev < last:
				st.found.add("out of order", "%s: revision goes backwards after revision %d", where, last)
			case rev == last && ei == 0:
				st.found.add("split revision", "%s: revision %d was already delivered in an earlier response (not atomic)", where, rev)
			}
			seen[fk] = true
			if start > 0 && rev < start {
				st.found.add("before start", "%s: the watch started at revision %d", where, start)
			}
			if lastProgress > 0 && rev <= lastProgress {
				st.found.add("progress ahead of events", "%s: a progress notification had already said revision %d was complete", where, lastProgress)
			}
			if r.rev > 0 && rev > r.rev {
				st.found.add("from the future", "%s: newer than the response's header revision %d", where, r.rev)
			} else if rev > st.bound {
				st.found.add("from the future", "%s: the history acknowledged nothing past revision %d (with %d operations of unknown outcome or leased keys)", where, st.maxAck, st.unknowns)
			}
			st.checkEvent(s, where, e)
			last = max(last, rev)
		}
	}
	return s.covered()
}

// checkEvent checks one event against what the history says about its key.
func (st *streams) checkEvent(s *session, where eventLoc, e history.WatchEvent) {
	rev, key := e.KV.ModRevision, e.KV.Key
	if e.Type == "put" {
		if w, ok := st.values[e.KV.Value]; ok {
			switch {
			case w.typ == history.Fail:
				st.found.add("failed write observed", "%s: value %q was written by %s, which failed", where, e.KV.Value, w)
			case w.key != key || (w.rev > 0 && w.rev != rev):
				st.found.add("wrong revision", "%s: value %q was written to %s by %s", where, e.KV.Value, quoteKey(w.key), w)
			}
		} else if st.cfg.prefix != "" && strings.HasPrefix(key, st.cfg.prefix) {
			st.found.add("phantom", "%s: value %q was never written", where, e.KV.Value)
		}
		kv := e.KV
		if kv.Version < 1 || kv.CreateRevision < 1 || kv.CreateRevision > rev || (kv.Version == 1) != (kv.CreateRevision == rev) {
			st.found.add("create flag", "%s: create_revision %d and version %d do not agree (version 1 is a create at its own revision)", where, kv.CreateRevision, kv.Version)
		}
	}
	// prev is the last event on key the history shows; sure says it is
	// the key's previous event, with nothing unknown in between. Whatever
	// compares the event with its previous one needs sure; what compares
	// it with an event it names, or with one the history shows between,
	// does not.
	prev := st.previous(key, rev)
	sure := prev != nil && st.complete(key, prev.rev, rev)
	if prev != nil && !sure && (e.Type == "put" || s.prevKV) {
		st.unsure++
	}
	if e.Type == "put" {
		st.checkCreateFlag(where, e, prev, sure)
	}
	if !s.prevKV {
		if e.PrevKV != nil {
			st.found.add("prev_kv", "%s: prev_kv delivered to a watch that did not ask for it", where)
		}
		return
	}
	st.checkPrevKV(where, e, prev, sure)
}

// checkCreateFlag checks a put's version and create_revision against the
// key's earlier events.
func (st *streams) checkCreateFlag(where eventLoc, e history.WatchEvent, prev *fact, sure bool) {
	kv := e.KV
	isCreate := kv.Version == 1
	d := st.lastDelete(kv.Key, kv.ModRevision)
	switch {
	case sure && prev.ev.Type == "put" && isCreate:
		st.found.add("create flag", "%s: reported as a create (version 1) but the key existed: %s put it at revision %d", where, prev.source, prev.rev)
	case sure && prev.ev.Type == "delete" && !isCreate:
		st.found.add("create flag", "%s: reported as a modify (version %d) but the key was deleted at revision %d (%s)", where, kv.Version, prev.rev, prev.source)
	case isCreate:
	case d != nil && d.rev >= kv.CreateRevision:
		st.found.add("create flag", "%s: a modify of the key created at revision %d, but the key was deleted at revision %d (%s)", where, kv.CreateRevision, d.rev, d.source)
	case prev == nil || prev.ev.Type != "put" || !prev.full || prev.rev < kv.CreateRevision:
		// Nothing shown of this incarnation of the key.
	case kv.CreateRevision != prev.ev.KV.CreateRevision || kv.Version <= prev.ev.KV.Version || (sure && kv.Version != prev.ev.KV.Version+1):
		st.found.add("create flag", "%s: version %d create_revision %d does not follow the put at revision %d (version %d, create_revision %d, %s)",
			where, kv.Version, kv.CreateRevision, prev.rev, prev.ev.KV.Version, prev.ev.KV.CreateRevision, prev.source)
	}
}

// checkPrevKV checks an event's prev_kv: the key as it was just before.
func (st *streams) checkPrevKV(where eventLoc, e history.WatchEvent, prev *fact, sure bool) {
	rev, key := e.KV.ModRevision, e.KV.Key
	isCreate := e.Type == "put" && e.KV.Version == 1
	p := e.PrevKV
	if p == nil {
		if !isCreate && !st.compact && (prev == nil || prev.ev.Type == "put") {
			st.found.add("prev_kv", "%s: no prev_kv on a %s, and nothing was compacted (previous: %s)", where, eventKind(e), describePrev(prev))
		}
		return
	}
	named := st.facts[factKey{p.ModRevision, key}]
	switch {
	case isCreate:
		st.found.add("prev_kv", "%s: a create carries prev_kv %s", where, describeKV(p))
	case p.Key != key || p.ModRevision >= rev:
		st.found.add("prev_kv", "%s: prev_kv %s of key %s is not before the event", where, describeKV(p), quoteKey(p.Key))
	case prev != nil && prev.rev > p.ModRevision:
		st.found.add("prev_kv", "%s: prev_kv is %s, but the key changed after it: %s at revision %d (%s)", where, describeKV(p), describeEvent(prev.ev), prev.rev, prev.source)
	case named != nil && (named.ev.Type != "put" || named.ev.KV.Value != p.Value ||
		(named.full && (named.ev.KV.Version != p.Version || named.ev.KV.CreateRevision != p.CreateRevision))):
		st.found.add("prev_kv", "%s: prev_kv is %s, but revision %d was %s (%s)", where, describeKV(p), named.rev, describeEvent(named.ev), named.source)
	case sure && prev.rev != p.ModRevision:
		st.found.add("prev_kv", "%s: prev_kv is %s, but the key's previous event is %s at revision %d (%s)", where, describeKV(p), describeEvent(prev.ev), prev.rev, prev.source)
	}
}

func eventKind(e history.WatchEvent) string {
	if e.Type == "delete" {
		return "delete"
	}
	return fmt.Sprintf("modify (version %d)", e.KV.Version)
}

func describePrev(f *fact) string {
	if f == nil {
		return "unknown"
	}
	return fmt.Sprintf("%s at revision %d by %s", describeEvent(f.ev), f.rev, f.source)
}

// lastDelete is the last known delete of key before rev.
func (st *streams) lastDelete(key string, rev int64) *fact { return before(st.deletes[key], rev) }

// previous is the last fact about key before rev.
func (st *streams) previous(key string, rev int64) *fact { return before(st.byKey[key], rev) }

// before is the last of facts (sorted by revision) before rev.
func before(facts []*fact, rev int64) *fact {
	i := sort.Search(len(facts), func(i int) bool { return facts[i].rev >= rev })
	if i == 0 {
		return nil
	}
	return facts[i-1]
}

// checkWatcher checks a logical watcher: each session, and that together
// they delivered every fact in what they covered.
func (st *streams) checkWatcher(ss []*session) {
	var spans []span
	for _, s := range ss {
		end := st.checkSession(s)
		if start := s.effectiveStart(); start > 0 {
			spans = append(spans, span{s, start, end})
		}
	}
	// Segments are runs of sessions not broken by a compaction; within one
	// the watcher must have delivered every fact from its first start
	// through its last coverage.
	for i := 0; i < len(spans); {
		j := i
		for j+1 < len(spans) && spans[j].s.compact == 0 {
			j++
		}
		seg := spans[i : j+1]
		i = j + 1
		from, to := seg[0].start, seg[0].end
		delivered := map[factKey]bool{}
		for _, sp := range seg {
			to = max(to, sp.end)
			for _, r := range sp.s.resps {
				for _, e := range r.events {
					delivered[factKey{e.KV.ModRevision, e.KV.Key}] = true
				}
			}
		}
		s0 := seg[0].s
		k := sort.Search(len(st.sorted), func(i int) bool { return st.sorted[i].rev >= from })
		for ; k < len(st.sorted) && st.sorted[k].rev <= to; k++ {
			f := st.sorted[k]
			if !inRange(f.key, s0.key, s0.end) || delivered[factKey{f.rev, f.key}] {
				continue
			}
			// Which session should have delivered it?
			var in *span
			var gapAfter *span
			for x := range seg {
				if f.rev >= seg[x].start && f.rev <= seg[x].end {
					in = &seg[x]
					break
				}
				if f.rev > seg[x].end && x+1 < len(seg) && f.rev < seg[x+1].start {
					gapAfter = &seg[x]
				}
			}
			switch {
			case in != nil:
				st.found.add("missed event", "%s covered revisions %d..%d but never delivered %s at revision %d, known from %s",
					in.s.name(), in.start, in.end, describeEvent(f.ev), f.rev, f.source)
			case gapAfter != nil:
				st.found.add("resume gap", "watch %s: session %d delivered through revision %d, but the next session started later, so %s at revision %d (known from %s) was never delivered",
					s0.watch, gapAfter.s.n, gapAfter.end, describeEvent(f.ev), f.rev, f.source)
			}
		}
		// Overlap between sessions: a later session delivering what an
		// earlier one covered.
		for x := 1; x < len(seg); x++ {
			prevEnd := seg[x-1].end
			for _, r := range seg[x].s.resps {
				for _, e := range r.events {
					if e.KV.ModRevision <= prevEnd {
						st.found.add("resume overlap", "%s delivered revision %d key %s again: session %d had already covered through revision %d",
							seg[x].s.name(), e.KV.ModRevision, quoteKey(e.KV.Key), seg[x-1].s.n, prevEnd)
					}
				}
			}
		}
		// A watcher that saw everything from revision 1 through the final
		// read must agree with the final read.
		if st.final != nil && i == len(spans) && to >= st.final.Complete.Revision && len(seg) == len(spans) {
			base, view, ok := int64(1), map[string]history.KV{}, true
			if st.cfg.initial != nil {
				base, view, ok = st.cfg.initial(s0.watch)
			}
			if ok && from == base {
				st.finalChecked++
				st.checkFinal(s0, seg, view)
			}
		}
	}
}

// span is what one session covered: revisions start..end.
type span struct {
	s          *session
	start, end int64
}

func (st *streams) checkFinal(s0 *session, seg []span, view map[string]history.KV) {
	frev := st.final.Complete.Revision
	from := seg[0].start
	for _, sp := range seg {
		for _, r := range sp.s.resps {
			for _, e := range r.events {
				if e.KV.ModRevision > frev {
					continue
				}
				if e.Type == "delete" {
					delete(view, e.KV.Key)
				} else {
					view[e.KV.Key] = e.KV
				}
			}
		}
	}
	want := map[string]history.KV{}
	fk, fend := st.final.Invoke.Key, st.final.Invoke.RangeEnd
	for _, kv := range st.final.Complete.KVs {
		if inRange(kv.Key, s0.key, s0.end) {
			want[kv.Key] = kv
		}
	}
	var keys []string
	for k := range view {
		if inRange(k, fk, fend) {
			keys = append(keys, k)
		}
	}
	for k := range want {
		if _, ok := view[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		got, gok := view[k]
		w, wok := want[k]
		switch {
		case !gok:
			st.found.add("final state", "watch %s saw everything from revision %d through %d but its view lacks key %s, which the final read found as %s",
				s0.watch, from, frev, quoteKey(k), describeKV(&w))
		case !wok:
			st.found.add("final state", "watch %s's view at revision %d has key %s = %s, but the final read did not find it",
				s0.watch, frev, quoteKey(k), describeKV(&got))
		case got.Value != w.Value || got.ModRevision != w.ModRevision:
			st.found.add("final state", "watch %s's view at revision %d has key %s = %s, but the final read found %s",
				s0.watch, frev, quoteKey(k), describeKV(&got), describeKV(&w))
		}
	}
}

// checkStreams runs the whole stream check.
func checkStreams(ops []history.Op, cfg streamConfig) Result {
	start := time.Now()
	st := newStreams(cfg)
	st.parse(ops)
	st.run()
	res := st.result()
	res.Seconds = time.Since(start).Seconds()
	return res
}

func (st *streams) run() {
	for _, ss := range st.watchers {
		st.checkWatcher(ss)
	}
}

func (st *streams) result() Result {
	res := Result{Checker: st.cfg.checker}
	nResp := 0
	for _, s := range st.sessions {
		nResp += len(s.resps)
	}
	what := fmt.Sprintf("%s, %s, %s, %s delivered, %s known",
		plural(len(st.watchers), "watcher"), plural(len(st.sessions), "session"), plural(nResp, "response"),
		plural(st.nEvents, "event"), plural(len(st.facts), "event"))
	if st.unsure > 0 {
		what += fmt.Sprintf("; %s not comparable with the key's previous event, which the history does not show with nothing unknown between", plural(st.unsure, "event"))
	}
	if st.final == nil {
		what += "; no final read"
	} else {
		what += fmt.Sprintf("; %d of %s compared with the final read", st.finalChecked, plural(len(st.watchers), "watcher"))
	}
	switch {
	case len(st.found.order) > 0:
		res.Verdict = Invalid
		res.Summary = fmt.Sprintf("%s guarantees broken: %s (%s)", st.cfg.checker, st.found.summary(), what)
		st.found.result(&res)
	case len(st.sessions) == 0:
		res.Verdict = Unknown
		res.Summary = "no watch sessions in the history: nothing to check"
	default:
		res.Verdict = Valid
		res.Summary = "watches ordered, unique, atomic, reliable and resumable: " + what
	}
	return res
}
