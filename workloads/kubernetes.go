package workloads

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

// checker.K8sPrefix is where the kubernetes workload keeps its pods.

// Kubernetes is the kubernetes workload.
type Kubernetes struct {
	Options
	counts Counts
	// Drain bounds how long informers may take to catch up with the final
	// read.
	Drain time.Duration
	// PageSize is the informers' list page size.
	PageSize int64
}

func init() {
	register(Spec{Name: "kubernetes", New: func(o Options) Workload { return NewKubernetes(o) }, Check: checker.Kubernetes})
}

// NewKubernetes returns the kubernetes workload.
func NewKubernetes(o Options) *Kubernetes {
	return &Kubernetes{Options: o, Drain: 10 * time.Second, PageSize: 4}
}

func (*Kubernetes) Name() string      { return "kubernetes" }
func (k *Kubernetes) Counts() *Counts { return &k.counts }

var k8sNamespaces = []string{"default", "kube-system"}

func (k *Kubernetes) key(r *rand.Rand) string {
	n := max(k.Keys, 2)
	return fmt.Sprintf("%s%s/pod-%d", checker.K8sPrefix, k8sNamespaces[r.IntN(len(k8sNamespaces))], r.IntN(n))
}

// Run drives writers (one per client) and informers until ctx is done, then
// reads the final state and lets the informers catch up with it.
func (k *Kubernetes) Run(ctx context.Context, clients []*clientv3.Client, rec *history.Recorder) {
	if len(clients) == 0 {
		return
	}
	ps := newProcs(k8sProcessBase)
	fin := &finalRev{}
	fin.set.Store(-1)
	wctx, cancelInformers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelInformers()
	var informers, caughtUp sync.WaitGroup
	for i := range 3 {
		inf := &informer{k: k, id: i, cli: clients[i%len(clients)], rec: rec, ps: ps, fin: fin,
			rand: rand.New(rand.NewPCG(uint64(i)+7, uint64(time.Now().UnixNano())))}
		caughtUp.Add(1)
		informers.Go(func() { inf.run(wctx, caughtUp.Done) })
	}
	k.Options.run(ctx, clients, func(i int, cli *clientv3.Client) func(context.Context) {
		kw := &k8sWriter{k: k, cli: cli, rec: rec, ps: ps, proc: ps.get(), seen: map[string]int64{},
			rand: rand.New(rand.NewPCG(uint64(i)+2000, uint64(time.Now().UnixNano())))}
		return kw.step
	})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		rev := finalRead(context.WithoutCancel(ctx), clients, rec, ps, &k.counts, k.Members, k.OpTimeout,
			checker.K8sRead, checker.K8sPrefix, clientv3.GetPrefixRangeEnd(checker.K8sPrefix))
		fin.store(rev)
		done := make(chan struct{})
		go func() { caughtUp.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(k.Drain):
		}
	}
	cancelInformers()
	informers.Wait()
}

// k8sWriter creates, updates and deletes pods as the API server does.
type k8sWriter struct {
	k    *Kubernetes
	cli  *clientv3.Client
	rec  *history.Recorder
	ps   *procs
	proc history.Process
	rand *rand.Rand
	seq  int
	// seen is the mod_revision this writer last saw per key: updating
	// against it without a fresh read exercises stale compares.
	seen map[string]int64
}

// value is an opaque object: a unique id, then bytes the store must keep
// as they are (valid UTF-8, so the history keeps them exactly).
func (kw *k8sWriter) value() string {
	kw.seq++
	var b strings.Builder
	fmt.Fprintf(&b, "k8s\x00%d-%d\x00", kw.proc, kw.seq)
	for range 16 + kw.rand.IntN(48) {
		b.WriteByte(byte(kw.rand.IntN(128)))
	}
	return b.String()
}

func (kw *k8sWriter) record(e history.Event) history.Event {
	e.Process = kw.proc
	if e.Type != history.Invoke {
		kw.k.counts.add(e.Type)
	}
	e = kw.rec.Record(e)
	if e.Type == history.Info {
		kw.proc = kw.ps.get()
	}
	return e
}

func (kw *k8sWriter) step(ctx context.Context) {
	key := kw.k.key(kw.rand)
	switch n := kw.rand.IntN(10); {
	case n < 4:
		kw.create(ctx, key)
	case n < 8:
		kw.conditional(ctx, checker.K8sUpdate, key)
	default:
		kw.conditional(ctx, checker.K8sDelete, key)
	}
}

func (kw *k8sWriter) ok(h interface {
	GetRevision() int64
	GetMemberId() uint64
}) history.Event {
	return history.Event{Type: history.OK, Revision: h.GetRevision(), Member: kw.k.Members[h.GetMemberId()]}
}

func (kw *k8sWriter) create(ctx context.Context, key string) {
	val := kw.value()
	kw.record(history.Event{Type: history.Invoke, F: checker.K8sCreate, Key: key, Value: val})
	octx, cancel := context.WithTimeout(ctx, kw.k.OpTimeout)
	res, err := kw.cli.Txn(octx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, val)).Else(clientv3.OpGet(key)).Commit()
	cancel()
	if err != nil {
		e := outcome(err, true)
		e.F, e.Key = checker.K8sCreate, key
		kw.record(e)
		return
	}
	e := kw.ok(res.Header)
	e.F, e.Key, e.Succeeded = checker.K8sCreate, key, res.Succeeded
	if res.Succeeded {
		kw.seen[key] = res.Header.Revision
	} else if len(res.Responses) > 0 {
		if r := res.Responses[0].GetResponseRange(); r != nil {
			e.KVs = kvs(r.Kvs)
		}
	}
	kw.record(e)
}

// conditional updates or deletes key if its mod_revision is what was last
// seen: usually read just before, sometimes remembered from earlier.
func (kw *k8sWriter) conditional(ctx context.Context, f, key string) {
	expect, ok := kw.seen[key]
	if !ok || kw.rand.IntN(4) != 0 {
		kw.record(history.Event{Type: history.Invoke, F: checker.K8sGet, Key: key})
		octx, cancel := context.WithTimeout(ctx, kw.k.OpTimeout)
		res, err := kw.cli.Get(octx, key)
		cancel()
		if err != nil {
			e := outcome(err, false)
			e.F, e.Key = checker.K8sGet, key
			kw.record(e)
			return
		}
		e := kw.ok(res.Header)
		e.F, e.Key, e.KVs = checker.K8sGet, key, kvs(res.Kvs)
		kw.record(e)
		if len(res.Kvs) == 0 {
			delete(kw.seen, key)
			return
		}
		expect = res.Kvs[0].ModRevision
	}
	inv := history.Event{Type: history.Invoke, F: f, Key: key, ExpectRevision: expect}
	then := clientv3.OpDelete(key)
	if f == checker.K8sUpdate {
		inv.Value = kw.value()
		then = clientv3.OpPut(key, inv.Value)
	}
	kw.record(inv)
	octx, cancel := context.WithTimeout(ctx, kw.k.OpTimeout)
	res, err := kw.cli.Txn(octx).If(clientv3.Compare(clientv3.ModRevision(key), "=", expect)).
		Then(then).Else(clientv3.OpGet(key)).Commit()
	cancel()
	if err != nil {
		e := outcome(err, true)
		e.F, e.Key = f, key
		kw.record(e)
		delete(kw.seen, key)
		return
	}
	e := kw.ok(res.Header)
	e.F, e.Key, e.Succeeded = f, key, res.Succeeded
	switch {
	case res.Succeeded && f == checker.K8sUpdate:
		kw.seen[key] = res.Header.Revision
	case res.Succeeded:
		delete(kw.seen, key)
	case len(res.Responses) > 0:
		if r := res.Responses[0].GetResponseRange(); r != nil {
			e.KVs = kvs(r.Kvs)
			if len(r.Kvs) > 0 {
				kw.seen[key] = r.Kvs[0].ModRevision
			} else {
				delete(kw.seen, key)
			}
		}
	}
	kw.record(e)
}

// informer lists the prefix in pages at one revision and then watches from
// the list's revision + 1, relisting when its watch is compacted away.
type informer struct {
	k    *Kubernetes
	id   int
	gen  int
	cli  *clientv3.Client
	rec  *history.Recorder
	ps   *procs
	fin  *finalRev
	rand *rand.Rand
}

func (inf *informer) run(ctx context.Context, caughtUp func()) {
	defer caughtUp()
	proc := inf.ps.get()
	end := clientv3.GetPrefixRangeEnd(checker.K8sPrefix)
	for ctx.Err() == nil {
		inf.gen++
		id := fmt.Sprintf("informer-%d.%d", inf.id, inf.gen)
		rev, ok := inf.list(ctx, &proc, id, end)
		if !ok {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		wr := &watcher{
			spec: watchSpec{id: id, key: checker.K8sPrefix, rangeEnd: end, prevKV: true},
			cli:  inf.cli, rec: inf.rec, counts: &inf.k.counts, ps: inf.ps, proc: proc,
			members: inf.k.Members, opTimeout: inf.k.OpTimeout, fin: inf.fin, open: checker.K8sWatchOpen, recv: checker.K8sWatchRecv,
			rand: inf.rand, next: rev + 1, covered: rev,
		}
		// Watch until compacted away (then relist) or done.
		for ctx.Err() == nil {
			wr.session(ctx)
			if inf.fin.set.Load() >= 0 && wr.reached() {
				return
			}
			if wr.compacted {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(50+inf.rand.IntN(200)) * time.Millisecond):
			}
		}
		proc = wr.proc
	}
}

// list reads the prefix in pages, every page after the first at the first
// page's revision, and returns that revision.
func (inf *informer) list(ctx context.Context, proc *history.Process, id, end string) (int64, bool) {
	var rev int64
	start := checker.K8sPrefix
	for page := 0; ; page++ {
		inv := history.Event{Type: history.Invoke, Process: *proc, F: checker.K8sList, WatchID: id, Key: start, RangeEnd: end,
			Limit: inf.k.PageSize, StartRevision: rev}
		inf.rec.Record(inv)
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(inf.k.PageSize)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		octx, cancel := context.WithTimeout(ctx, max(inf.k.OpTimeout, time.Second))
		res, err := inf.cli.Get(octx, start, opts...)
		cancel()
		if err != nil {
			e := outcome(err, false)
			e.Process, e.F, e.WatchID, e.Key = *proc, checker.K8sList, id, start
			inf.k.counts.add(e.Type)
			inf.rec.Record(e)
			if e.Type == history.Info {
				*proc = inf.ps.get()
			}
			return 0, false
		}
		inf.k.counts.add(history.OK)
		inf.rec.Record(history.Event{Type: history.OK, Process: *proc, F: checker.K8sList, WatchID: id, Key: start,
			Revision: res.Header.Revision, Member: inf.k.Members[res.Header.MemberId], KVs: kvs(res.Kvs), More: res.More})
		if rev == 0 {
			rev = res.Header.Revision
		}
		if !res.More || len(res.Kvs) == 0 {
			return rev, true
		}
		start = string(res.Kvs[len(res.Kvs)-1].Key) + "\x00"
	}
}
