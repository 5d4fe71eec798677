package workloads

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
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
	fl := startFollowers(ctx)
	defer fl.cancel()
	for i := range 3 {
		inf := &informer{actor: k.actor(clients[i%len(clients)], rec, &k.counts, ps, "kubernetes-informer", i), k: k, id: i, fin: fl.fin}
		// Its list pages get at least a second each.
		inf.opTimeout = max(inf.opTimeout, time.Second)
		fl.start(inf.run)
	}
	k.Options.run(ctx, clients, func(i int, cli *clientv3.Client) func(context.Context) {
		kw := &k8sWriter{actor: k.actor(cli, rec, &k.counts, ps, "kubernetes-writer", i), k: k, seen: map[string]int64{}}
		return kw.step
	})
	fl.finish(ctx, k.Drain, func(ctx context.Context) int64 {
		return finalRead(ctx, clients, rec, ps, &k.counts, k.Members, k.OpTimeout,
			checker.K8sRead, checker.K8sPrefix, clientv3.GetPrefixRangeEnd(checker.K8sPrefix))
	})
}

// k8sWriter creates, updates and deletes pods as the API server does.
type k8sWriter struct {
	actor
	k   *Kubernetes
	seq int
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

func (kw *k8sWriter) create(ctx context.Context, key string) {
	val := kw.value()
	inv := history.Event{Type: history.Invoke, F: checker.K8sCreate, Key: key, Value: val}
	res, err := call(ctx, &kw.actor, inv, true, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return kw.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, val)).Else(clientv3.OpGet(key)).Commit()
	})
	if err != nil {
		return
	}
	e := kw.done(inv, res.Header)
	e.Succeeded = res.Succeeded
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
		get := history.Event{Type: history.Invoke, F: checker.K8sGet, Key: key}
		res, err := call(ctx, &kw.actor, get, false, func(ctx context.Context) (*clientv3.GetResponse, error) {
			return kw.cli.Get(ctx, key)
		})
		if err != nil {
			return
		}
		e := kw.done(get, res.Header)
		e.KVs = kvs(res.Kvs)
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
	res, err := call(ctx, &kw.actor, inv, true, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return kw.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", expect)).
			Then(then).Else(clientv3.OpGet(key)).Commit()
	})
	if err != nil {
		delete(kw.seen, key)
		return
	}
	e := kw.done(inv, res.Header)
	e.Succeeded = res.Succeeded
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
	actor
	k   *Kubernetes
	id  int
	gen int
	fin *finalRev
}

func (inf *informer) run(ctx context.Context, caughtUp func()) {
	defer caughtUp()
	end := clientv3.GetPrefixRangeEnd(checker.K8sPrefix)
	for ctx.Err() == nil {
		inf.gen++
		id := fmt.Sprintf("informer-%d.%d", inf.id, inf.gen)
		rev, ok := inf.list(ctx, id, end)
		if !ok {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		wr := &watcher{actor: inf.actor,
			spec: watchSpec{id: id, key: checker.K8sPrefix, rangeEnd: end, prevKV: true},
			fin:  inf.fin, open: checker.K8sWatchOpen, recv: checker.K8sWatchRecv, next: rev + 1, covered: rev,
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
		inf.proc = wr.proc
	}
}

// list reads the prefix in pages, every page after the first at the first
// page's revision, and returns that revision.
func (inf *informer) list(ctx context.Context, id, end string) (int64, bool) {
	var rev int64
	start := checker.K8sPrefix
	for {
		inv := history.Event{Type: history.Invoke, F: checker.K8sList, WatchID: id, Key: start, RangeEnd: end,
			Limit: inf.k.PageSize, StartRevision: rev}
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(inf.k.PageSize)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		res, err := call(ctx, &inf.actor, inv, false, func(ctx context.Context) (*clientv3.GetResponse, error) {
			return inf.cli.Get(ctx, start, opts...)
		})
		if err != nil {
			return 0, false
		}
		e := inf.done(inv, res.Header)
		e.KVs, e.More = kvs(res.Kvs), res.More
		inf.record(e)
		if rev == 0 {
			rev = res.Header.Revision
		}
		if !res.More || len(res.Kvs) == 0 {
			return rev, true
		}
		start = string(res.Kvs[len(res.Kvs)-1].Key) + "\x00"
	}
}
