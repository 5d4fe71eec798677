package workloads

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

// checker.WatchPrefix is where the watch workload writes.

// Process ids of the workloads added after register start at their own
// base, so that workloads mixed in one run never share a process.
const (
	watchProcessBase = 100_000
	k8sProcessBase   = 200_000
	leaseProcessBase = 300_000
)

// procs hands out process ids: one per actor, and a fresh one whenever an
// actor's operation ends in info.
type procs struct{ next atomic.Int64 }

func newProcs(base int64) *procs {
	p := &procs{}
	p.next.Store(base)
	return p
}

func (p *procs) get() history.Process { return history.Process(p.next.Add(1) - 1) }

// Watch is the watch workload: writers put, delete and txn a few keys
// under checker.WatchPrefix with unique values while watchers follow the prefix
// (and single keys, and the whole keyspace) from chosen start revisions,
// reopening after errors and compaction from where they stopped; besides
// them one long-lived watcher per member (Options.MemberClients) follows
// the prefix through that member alone, whatever the workers. When the
// time is up it reads the prefix once more and lets every watcher catch up
// with that revision, so the checker knows the final state.
type Watch struct {
	Options
	counts Counts
	// Drain bounds how long watchers may take to catch up with the final
	// read after the writers stopped.
	Drain time.Duration
}

func init() {
	register(Spec{Name: "watch", New: func(o Options) Workload { return NewWatch(o) }, Check: checker.Watch})
}

// NewWatch returns the watch workload.
func NewWatch(o Options) *Watch { return &Watch{Options: o, Drain: 10 * time.Second} }

func (w *Watch) Counts() *Counts { return &w.counts }

func (w *Watch) keys() int { return min(max(w.Keys, 3), 10) }

// watchSpec describes one logical watcher.
type watchSpec struct {
	id             string
	key, rangeEnd  string
	from           string // "first", "now", "recent", "future"
	prevKV         bool
	progressNotify bool
	// requestProgress asks for progress notifications now and then.
	requestProgress bool
	// requireLeader makes the server cancel the watch when its member loses
	// the leader, so the watcher must reopen.
	requireLeader bool
	// restartEvery closes and reopens the session now and then, to
	// exercise resumption without faults.
	restartEvery time.Duration
}

func (w *Watch) specs() []watchSpec {
	end := clientv3.GetPrefixRangeEnd(checker.WatchPrefix)
	k0 := checker.WatchPrefix + "k0"
	return []watchSpec{
		{id: "w0", key: checker.WatchPrefix, rangeEnd: end, from: "first", prevKV: true, progressNotify: true},
		{id: "w1", key: checker.WatchPrefix, rangeEnd: end, from: "now", requireLeader: true},
		{id: "w2", key: k0, from: "first", prevKV: true, restartEvery: 3 * time.Second},
		{id: "w3", key: checker.WatchPrefix, rangeEnd: end, from: "recent", prevKV: true, requestProgress: true, requireLeader: true},
		{id: "w4", key: checker.WatchPrefix, rangeEnd: end, from: "future", progressNotify: true},
		{id: "w5", key: checker.WatchPrefix, rangeEnd: end, from: "first", requestProgress: true, restartEvery: 5 * time.Second},
		// The whole keyspace: in a mixed run it also sees the other
		// workloads' writes, which the checker compares across watchers.
		{id: "w6", key: "\x00", rangeEnd: "\x00", from: "first", prevKV: true},
	}
}

// PinnedWatch is the WatchID prefix of the watcher on each member: the
// prefix from revision 1 through a client of that member alone, opened
// again only when its stream is closed on it (a compaction, a cancel by
// the server), so one long stream sees the member's faults: a partition
// from its peers, a restart, a snapshot from the leader.
const PinnedWatch = "pinned-"

func pinnedSpec(member string) watchSpec {
	return watchSpec{id: PinnedWatch + member, key: checker.WatchPrefix, rangeEnd: clientv3.GetPrefixRangeEnd(checker.WatchPrefix),
		from: "first", prevKV: true, progressNotify: true}
}

// Run drives writers (one per client) and watchers until ctx is done, then
// reads the final state and lets the watchers catch up.
func (w *Watch) Run(ctx context.Context, clients []*clientv3.Client, rec *history.Recorder) {
	if len(clients) == 0 {
		return
	}
	ps := newProcs(watchProcessBase)
	fl := startFollowers(ctx)
	defer fl.cancel()
	for i, spec := range w.specs() {
		wr := &watcher{actor: w.actor(clients[i%len(clients)], rec, &w.counts, ps, "watch-watcher", i),
			spec: spec, fin: fl.fin, open: checker.WatchOpen, recv: checker.WatchRecv}
		fl.start(wr.run)
	}
	for i, name := range slices.Sorted(maps.Keys(w.MemberClients)) {
		wr := &watcher{actor: w.actor(w.MemberClients[name], rec, &w.counts, ps, "watch-pinned", i),
			spec: pinnedSpec(name), fin: fl.fin, open: checker.WatchOpen, recv: checker.WatchRecv}
		fl.start(wr.run)
	}

	nkeys := w.keys()
	w.Options.run(ctx, clients, func(i int, cli *clientv3.Client) func(context.Context) {
		wr := &watchWriter{actor: w.actor(cli, rec, &w.counts, ps, "watch-writer", i), w: w, nkeys: nkeys}
		return wr.step
	})

	fl.finish(ctx, w.Drain, func(ctx context.Context) int64 {
		return finalRead(ctx, clients, rec, ps, &w.counts, w.Members, w.OpTimeout,
			checker.WatchRead, checker.WatchPrefix, clientv3.GetPrefixRangeEnd(checker.WatchPrefix))
	})
}

// followers are the watchers (or informers) of a run. They follow the
// writes with a context of their own, which outlives the run's, so that
// they can catch up with the final read after the writers stop.
type followers struct {
	fin               *finalRev
	ctx               context.Context
	cancel            context.CancelFunc
	running, caughtUp sync.WaitGroup
}

func startFollowers(ctx context.Context) *followers {
	fl := &followers{fin: &finalRev{}}
	fl.fin.set.Store(-1)
	fl.ctx, fl.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return fl
}

// start runs one follower, which calls caughtUp once it has covered the
// final read's revision (or at its end).
func (fl *followers) start(run func(ctx context.Context, caughtUp func())) {
	fl.caughtUp.Add(1)
	fl.running.Go(func() { run(fl.ctx, fl.caughtUp.Done) })
}

// finish, once the writers have stopped, stops the followers. If the time
// is up (not an interrupt) it first records the final state with read and
// gives every follower up to drain to catch up with it.
func (fl *followers) finish(ctx context.Context, drain time.Duration, read func(context.Context) int64) {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		fl.catchUp(context.WithoutCancel(ctx), drain, read)
	}
	fl.stop()
}

// catchUp records the final state with read and gives every follower up
// to drain to catch up with it.
func (fl *followers) catchUp(ctx context.Context, drain time.Duration, read func(context.Context) int64) {
	fl.fin.store(read(ctx))
	done := make(chan struct{})
	go func() { fl.caughtUp.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
	}
}

// stop ends every follower and waits for them.
func (fl *followers) stop() {
	fl.cancel()
	fl.running.Wait()
}

// finalRev is the final read's revision once known: 0 when it failed, -1
// while the writers still run.
type finalRev struct {
	set atomic.Int64
	ch  chan struct{}
	mu  sync.Mutex
}

func (f *finalRev) store(rev int64) {
	f.set.Store(rev)
	f.mu.Lock()
	if f.ch != nil {
		close(f.ch)
		f.ch = nil
	}
	f.mu.Unlock()
}

// wait returns a channel closed when the final revision becomes known.
func (f *finalRev) wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.set.Load() >= 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if f.ch == nil {
		f.ch = make(chan struct{})
	}
	return f.ch
}

// finalRead reads [key, end) until it succeeds or a minute passes, and
// returns the revision read (0 if none succeeded).
func finalRead(ctx context.Context, clients []*clientv3.Client, rec *history.Recorder, ps *procs, counts *Counts,
	members map[uint64]string, opTimeout time.Duration, f, key, end string) int64 {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	proc := ps.get()
	for i := 0; ctx.Err() == nil; i++ {
		cli := clients[i%len(clients)]
		rec.Record(history.Event{Type: history.Invoke, Process: proc, F: f, Key: key, RangeEnd: end})
		octx, ocancel := context.WithTimeout(ctx, max(opTimeout, 2*time.Second))
		res, err := cli.Get(octx, key, clientv3.WithRange(end))
		ocancel()
		if err != nil {
			done := outcome(err, false)
			done.Process, done.F, done.Key = proc, f, key
			counts.add(done.Type)
			rec.Record(done)
			if done.Type == history.Info {
				proc = ps.get()
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		counts.add(history.OK)
		rec.Record(history.Event{Type: history.OK, Process: proc, F: f, Key: key, RangeEnd: end,
			Revision: res.Header.Revision, Member: members[res.Header.MemberId], KVs: kvs(res.Kvs)})
		return res.Header.Revision
	}
	return 0
}

func kvs(in []*mvccpb.KeyValue) []history.KV {
	out := make([]history.KV, len(in))
	for i, kv := range in {
		out[i] = toKV(kv)
	}
	return out
}

func toKV(kv *mvccpb.KeyValue) history.KV {
	return history.KV{Key: string(kv.Key), Value: string(kv.Value), CreateRevision: kv.CreateRevision,
		ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease}
}

func toEvents(in []*clientv3.Event) []history.WatchEvent {
	out := make([]history.WatchEvent, len(in))
	for i, ev := range in {
		e := history.WatchEvent{Type: "put", KV: toKV(ev.Kv)}
		if ev.Type == mvccpb.DELETE {
			e.Type = "delete"
		}
		if ev.PrevKv != nil {
			p := toKV(ev.PrevKv)
			e.PrevKV = &p
		}
		out[i] = e
	}
	return out
}

// watchWriter is one writer of the watch workload.
type watchWriter struct {
	actor
	w     *Watch
	nkeys int
	seq   int
}

func (ww *watchWriter) value() string {
	ww.seq++
	return fmt.Sprintf("v%d-%d", ww.proc, ww.seq)
}

func (ww *watchWriter) key() string {
	return fmt.Sprintf("%sk%d", checker.WatchPrefix, ww.rand.IntN(ww.nkeys))
}

func (ww *watchWriter) step(ctx context.Context) {
	inv := history.Event{Type: history.Invoke}
	switch n := ww.rand.IntN(10); {
	case n < 6:
		inv.F, inv.Key, inv.Value = checker.WatchPut, ww.key(), ww.value()
	case n < 8:
		inv.F, inv.Key = checker.WatchDelete, ww.key()
	default:
		// Two or three distinct keys in one revision: the atomic check's
		// material.
		inv.F = checker.WatchTxn
		perm := ww.rand.Perm(ww.nkeys)[:min(ww.nkeys, 2+ww.rand.IntN(2))]
		for _, k := range perm {
			inv.KVs = append(inv.KVs, history.KV{Key: fmt.Sprintf("%sk%d", checker.WatchPrefix, k), Value: ww.value()})
		}
	}
	ww.record(inv)
	octx, cancel := context.WithTimeout(ctx, ww.opTimeout)
	done := ww.do(octx, inv)
	cancel()
	done.F, done.Key = inv.F, inv.Key
	ww.record(done)
}

func (ww *watchWriter) do(ctx context.Context, inv history.Event) history.Event {
	switch inv.F {
	case checker.WatchPut:
		res, err := ww.cli.Put(ctx, inv.Key, inv.Value)
		if err != nil {
			return outcome(err, true)
		}
		return ww.ok(res.Header)
	case checker.WatchDelete:
		res, err := ww.cli.Delete(ctx, inv.Key)
		if err != nil {
			return outcome(err, true)
		}
		e := ww.ok(res.Header)
		e.Deleted = res.Deleted
		return e
	default:
		var ops []clientv3.Op
		for _, kv := range inv.KVs {
			ops = append(ops, clientv3.OpPut(kv.Key, kv.Value))
		}
		res, err := ww.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return outcome(err, true)
		}
		e := ww.ok(res.Header)
		e.Succeeded = res.Succeeded
		return e
	}
}

// watcher runs one logical watcher: sessions one after another, each
// opened where the previous one stopped.
type watcher struct {
	actor
	spec watchSpec
	fin  *finalRev
	// open and recv are the operation names recorded.
	open, recv string

	// next is the revision the next session starts at (0: from now);
	// covered is the highest revision through which the watcher has
	// delivered everything.
	next, covered int64
	// compacted reports that the last session ended because its start
	// revision was compacted.
	compacted bool
}

// run opens sessions until ctx is done; caughtUp is called once the
// watcher has covered the final read's revision (or at the end).
func (wr *watcher) run(ctx context.Context, caughtUp func()) {
	defer caughtUp()
	if err := wr.initialRevision(ctx); err != nil {
		return
	}
	for ctx.Err() == nil {
		wr.session(ctx)
		if wr.fin.set.Load() >= 0 && wr.reached() {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(50+wr.rand.IntN(200)) * time.Millisecond):
		}
	}
}

// reached reports whether the watcher has covered the final revision.
func (wr *watcher) reached() bool {
	f := wr.fin.set.Load()
	return f == 0 || (f > 0 && wr.covered >= f)
}

// initialRevision picks the first session's start revision.
func (wr *watcher) initialRevision(ctx context.Context) error {
	switch wr.spec.from {
	case "first":
		wr.next = 1
		return nil
	case "now":
		wr.next = 0
		return nil
	}
	for ctx.Err() == nil {
		octx, cancel := context.WithTimeout(ctx, max(wr.opTimeout, time.Second))
		res, err := wr.cli.Get(octx, "/", clientv3.WithCountOnly())
		cancel()
		if err == nil {
			rev := res.Header.Revision
			if wr.spec.from == "recent" {
				wr.next = max(1, rev-int64(wr.rand.IntN(20)))
			} else {
				wr.next = rev + 20 + int64(wr.rand.IntN(30))
			}
			wr.covered = wr.next - 1
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
	return ctx.Err()
}

func (wr *watcher) record(e history.Event) {
	e.WatchID = wr.spec.id
	if e.F == "" {
		e.F = wr.recv
	}
	wr.actor.record(e)
}

// session opens one Watch and records its responses until it ends: an
// error, a compaction, a restart, the final revision reached, or ctx done.
func (wr *watcher) session(ctx context.Context) {
	wr.compacted = false
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if wr.spec.requireLeader {
		sctx = clientv3.WithRequireLeader(sctx)
	}
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify(), clientv3.WithRev(wr.next)}
	if wr.spec.rangeEnd != "" {
		opts = append(opts, clientv3.WithRange(wr.spec.rangeEnd))
	}
	if wr.spec.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if wr.spec.progressNotify {
		opts = append(opts, clientv3.WithProgressNotify())
	}
	wr.record(history.Event{Type: history.Invoke, F: wr.open, Key: wr.spec.key, RangeEnd: wr.spec.rangeEnd,
		StartRevision: wr.next, PrevKV: wr.spec.prevKV, ProgressNotify: wr.spec.progressNotify})
	ch := wr.cli.Watch(sctx, wr.spec.key, opts...)

	var restart <-chan time.Time
	if wr.spec.restartEvery > 0 {
		restart = time.After(wr.spec.restartEvery/2 + time.Duration(wr.rand.Int64N(int64(wr.spec.restartEvery))))
	}
	var progressTick <-chan time.Time
	if wr.spec.requestProgress {
		t := time.NewTicker(700 * time.Millisecond)
		defer t.Stop()
		progressTick = t.C
	}
	finalKnown := wr.fin.wait()
	var drainTick <-chan time.Time
	f := wr.open
	for {
		select {
		case resp, ok := <-ch:
			if !ok {
				wr.record(history.Event{Type: history.Fail, F: f, Error: "watch channel closed: " + errText(ctx.Err())})
				return
			}
			if err := resp.Err(); err != nil {
				e := history.Event{Type: history.Fail, F: f, Error: err.Error(), Revision: resp.Header.Revision,
					CompactRevision: resp.CompactRevision, Member: wr.members[resp.Header.MemberId]}
				wr.record(e)
				wr.compacted = resp.CompactRevision > 0
				if resp.CompactRevision > 0 && resp.CompactRevision > wr.next {
					// Everything before the compaction is gone: resume at it.
					wr.next = resp.CompactRevision
					wr.covered = max(wr.covered, wr.next-1)
				}
				return
			}
			e := wr.ok(&resp.Header)
			e.F = f
			switch {
			case resp.Created:
				e.Created = true
				if wr.next == 0 {
					wr.next = resp.Header.Revision + 1
					wr.covered = resp.Header.Revision
				}
			case resp.IsProgressNotify():
				e.Progress = true
				wr.covered = max(wr.covered, resp.Header.Revision)
				wr.next = max(wr.next, resp.Header.Revision+1)
			default:
				e.WatchEvents = toEvents(resp.Events)
				if n := len(resp.Events); n > 0 {
					last := resp.Events[n-1].Kv.ModRevision
					wr.covered = max(wr.covered, last)
					wr.next = max(wr.next, last+1)
				}
			}
			wr.record(e)
			f = wr.recv
			if wr.fin.set.Load() >= 0 && wr.reached() {
				return
			}
			wr.record(history.Event{Type: history.Invoke, F: f})
		case <-restart:
			wr.record(history.Event{Type: history.Fail, F: f, Error: "closed by the watcher to reopen"})
			return
		case <-progressTick:
			wr.requestProgress(sctx)
		case <-finalKnown:
			finalKnown = nil
			if wr.reached() {
				wr.record(history.Event{Type: history.Fail, F: f, Error: "closed by the watcher: caught up with the final read"})
				return
			}
			t := time.NewTicker(300 * time.Millisecond)
			defer t.Stop()
			drainTick = t.C
			wr.requestProgress(sctx)
		case <-drainTick:
			wr.requestProgress(sctx)
		}
	}
}

func (wr *watcher) requestProgress(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = wr.cli.RequestProgress(rctx)
}

func errText(err error) string {
	if err == nil {
		return "closed by the client"
	}
	return err.Error()
}
