package workloads

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

// KVPrefix is where the kv workload keeps its keys.
const KVPrefix = "/kv/"

// KVKey is the name of the kv workload's i-th key. Names sort in index
// order, so a range [KVKey(i), KVKey(j)) holds keys i to j-1.
func KVKey(i int) string { return fmt.Sprintf("%sk%03d", KVPrefix, i) }

// KVRangeEnd is the end of the range holding every kv key.
const KVRangeEnd = "/kv0" // '/' + 1 == '0'

// kvLeaseTTL is the kv workload's lease's TTL in seconds: longer than any
// run, so no key attached to it expires while the checker is watching.
const kvLeaseTTL = 24 * 60 * 60

// kvProcessBase is where the kv workload's process ids start, apart from
// every other workload's.
const kvProcessBase = 400_000

// Read consistencies of the kv workload's get and range reads.
const (
	Linearizable = "linearizable"
	Serializable = "serializable"
	Mixed        = "mixed"
)

// KV is the kv workload: a weighted mix of gets, ranges (whole prefix or
// part of it, paginated with a limit, keys only), puts, deletes and
// multi-key transactions comparing value, version, create and mod
// revision, on a small set of keys under KVPrefix, with a unique value per
// write. It compacts at a recent revision every CompactInterval.
type KV struct {
	Options
	counts Counts
	procs  processes
	// nextCompact is when, in ns on the test clock, the next compaction
	// is due; the worker that claims it compacts.
	nextCompact atomic.Int64
	// lastRev is the highest header revision any worker has seen.
	lastRev atomic.Int64
	// compacted is the revision of the last compaction that succeeded.
	compacted atomic.Int64
	// lease is attached to some puts; it is granted for longer than any
	// run, so its keys never expire under the workload (0: none granted).
	lease atomic.Int64
}

func init() {
	register(Spec{Name: "kv", New: func(o Options) Workload { return NewKV(o) }, Check: checker.KV})
}

// NewKV returns the kv workload.
func NewKV(o Options) *KV {
	k := &KV{Options: o}
	k.procs.from(kvProcessBase)
	return k
}

func (k *KV) Counts() *Counts { return &k.counts }

// Run drives one worker per client until ctx is done.
func (k *KV) Run(ctx context.Context, clients []*clientv3.Client, rec *history.Recorder) {
	if len(clients) > 0 {
		// Without a lease (the grant failed, say during an election) the
		// puts simply go without one.
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if l, err := clients[0].Grant(gctx, kvLeaseTTL); err == nil {
			k.lease.Store(int64(l.ID))
		}
		cancel()
	}
	if k.CompactInterval > 0 {
		k.nextCompact.Store(rec.Since() + int64(k.CompactInterval))
	}
	k.Options.run(ctx, clients, func(w int, cli *clientv3.Client) func(context.Context) {
		wk := &kvWorker{k: k, cli: cli, rec: rec, id: w, process: k.newProcess(),
			rand: k.Options.rand("kv", w),
			seen: make([]*history.KV, max(1, k.Keys))}
		return wk.next
	})
}

func (k *KV) newProcess() history.Process { return k.procs.new() }

type kvWorker struct {
	k       *KV
	cli     *clientv3.Client
	rec     *history.Recorder
	id      int
	process history.Process
	rand    *rand.Rand
	seq     int
	// seen is the last state of each key this worker observed (nil: not
	// seen or absent), so that its compares have a fair chance to hold.
	seen []*history.KV
}

func (w *kvWorker) key() (int, string) {
	i := w.rand.IntN(len(w.seen))
	return i, KVKey(i)
}

// value returns a value no other write in the test uses.
func (w *kvWorker) value() string {
	w.seq++
	return fmt.Sprintf("kv%d-%d", w.id, w.seq)
}

func (w *kvWorker) serializable() bool {
	switch w.k.ReadConsistency {
	case Serializable:
		return true
	case Mixed:
		return w.rand.IntN(2) == 0
	}
	return false
}

// next invokes one operation and records its outcome.
func (w *kvWorker) next(ctx context.Context) {
	inv := history.Event{Type: history.Invoke, Process: w.process}
	if due := w.k.nextCompact.Load(); due > 0 && w.rec.Since() >= due &&
		w.k.nextCompact.CompareAndSwap(due, w.rec.Since()+int64(w.k.CompactInterval)) {
		// A recent revision, a few writes behind the newest seen.
		rev := w.k.lastRev.Load() - 5
		if rev > 0 {
			inv.F, inv.CompactRevision = checker.KVCompact, rev
		}
	}
	if inv.F == "" {
		w.generate(&inv)
	}
	w.rec.Record(inv)

	octx, cancel := context.WithTimeout(ctx, w.k.OpTimeout)
	done := w.do(octx, inv)
	cancel()
	done.Process, done.F = w.process, inv.F
	if inv.F != checker.KVRange && inv.F != checker.KVRangeSerializable && inv.F != checker.KVList && inv.F != checker.KVTxn && inv.F != checker.KVCompact {
		done.Key = inv.Key
	}
	w.k.counts.add(done.Type)
	if done.Type == history.OK {
		if inv.F == checker.KVCompact {
			w.k.compacted.Store(inv.CompactRevision)
		}
		w.learn(inv, done)
		for {
			last := w.k.lastRev.Load()
			if done.Revision <= last || w.k.lastRev.CompareAndSwap(last, done.Revision) {
				break
			}
		}
	}
	w.rec.Record(done)
	if done.Type == history.Info {
		w.process = w.k.newProcess()
	}
}

// generate fills in a random operation: reads 40% (a few of them of a past
// revision), puts 25%, deletes 10%, transactions 25%.
func (w *kvWorker) generate(inv *history.Event) {
	n := w.rand.IntN(100)
	switch {
	case n < 3 && w.k.lastRev.Load() > 1:
		// A read of the past: recent enough to be there unless a
		// compaction removed it, which the checker then expects.
		inv.F = checker.KVGet
		_, inv.Key = w.key()
		inv.AtRevision = max(1, w.k.lastRev.Load()-int64(w.rand.IntN(20)))
		if c := w.k.compacted.Load(); c > 0 && w.rand.IntN(2) == 0 {
			// Either side of the compaction: below it must be refused.
			inv.AtRevision = max(1, c-2+int64(w.rand.IntN(5)))
		}
	case n < 25:
		inv.F = checker.KVGet
		_, inv.Key = w.key()
		if inv.Serializable = w.serializable(); inv.Serializable {
			inv.F = checker.KVGetSerializable
		}
	case n < 40:
		inv.F = checker.KVRange
		inv.Serializable = w.serializable()
		inv.Key, inv.RangeEnd = KVPrefix, KVRangeEnd
		if w.rand.IntN(2) == 0 && len(w.seen) > 1 {
			// Part of the keys.
			a := w.rand.IntN(len(w.seen) - 1)
			b := a + 1 + w.rand.IntN(len(w.seen)-a)
			inv.Key, inv.RangeEnd = KVKey(a), KVKey(b)
		}
		if w.rand.IntN(3) == 0 {
			inv.Limit = int64(1 + w.rand.IntN(3))
		}
		inv.KeysOnly = w.rand.IntN(4) == 0
		if inv.Serializable {
			inv.F = checker.KVRangeSerializable
		} else if inv.Limit > 0 && w.rand.IntN(2) == 0 {
			inv.F = checker.KVList
		}
	case n < 65:
		inv.F = checker.KVPut
		_, inv.Key = w.key()
		inv.Value = w.value()
		inv.PrevKV = w.rand.IntN(3) == 0
		if l := w.k.lease.Load(); l != 0 && w.rand.IntN(3) == 0 {
			inv.Lease = l
		}
	case n < 75:
		inv.F = checker.KVDelete
		_, inv.Key = w.key()
		inv.PrevKV = w.rand.IntN(2) == 0
	default:
		inv.F = checker.KVTxn
		w.txn(inv)
	}
}

// txn builds a transaction: a compare on one key against what this worker
// last saw of it; then a put of that key and perhaps a put or delete of a
// second; else a get of both.
func (w *kvWorker) txn(inv *history.Event) {
	inv.Txn = &history.Txn{}
	i, a := w.key()
	seen := w.seen[i]
	c := history.Compare{Key: a, Op: "="}
	switch n := w.rand.IntN(4); {
	case seen == nil:
		c.Target, c.Number = "create_revision", 0
	case n == 0:
		c.Target, c.Value = "value", seen.Value
	case n == 1:
		c.Target, c.Number = "version", seen.Version
	case n == 2:
		c.Target, c.Number = "create_revision", seen.CreateRevision
	default:
		c.Target, c.Number = "mod_revision", seen.ModRevision
	}
	inv.Compares = []history.Compare{c}
	inv.Then = []history.TxnOp{{F: "put", Key: a, Value: w.value()}}
	inv.Else = []history.TxnOp{{F: "get", Key: a}}
	if j, b := w.key(); j != i {
		switch w.rand.IntN(3) {
		case 0:
			inv.Then = append(inv.Then, history.TxnOp{F: "put", Key: b, Value: w.value()})
		case 1:
			inv.Then = append(inv.Then, history.TxnOp{F: "delete", Key: b})
		}
		inv.Else = append(inv.Else, history.TxnOp{F: "get", Key: b})
	}
}

func (w *kvWorker) ok(h interface {
	GetMemberId() uint64
	GetRevision() int64
}) history.Event {
	return history.Event{Type: history.OK, Member: w.k.Members[h.GetMemberId()], Revision: h.GetRevision()}
}

func (w *kvWorker) do(ctx context.Context, inv history.Event) history.Event {
	switch inv.F {
	case checker.KVGet, checker.KVRange, checker.KVGetSerializable, checker.KVRangeSerializable:
		opts := []clientv3.OpOption{}
		if inv.RangeEnd != "" {
			opts = append(opts, clientv3.WithRange(inv.RangeEnd))
		}
		if inv.Limit > 0 {
			opts = append(opts, clientv3.WithLimit(inv.Limit))
		}
		if inv.KeysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		if inv.Serializable {
			opts = append(opts, clientv3.WithSerializable())
		}
		if inv.AtRevision > 0 {
			opts = append(opts, clientv3.WithRev(inv.AtRevision))
		}
		res, err := w.cli.Get(ctx, inv.Key, opts...)
		if err != nil {
			return outcome(err, false)
		}
		e := w.ok(res.Header)
		e.Serializable = inv.Serializable
		e.KVs = kvList(res.Kvs)
		e.Count, e.More = res.Count, res.More
		return e
	case checker.KVList:
		var e history.Event
		from := inv.Key
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(inv.RangeEnd), clientv3.WithLimit(inv.Limit)}
			if inv.KeysOnly {
				opts = append(opts, clientv3.WithKeysOnly())
			}
			if e.Revision > 0 {
				opts = append(opts, clientv3.WithRev(e.Revision))
			}
			res, err := w.cli.Get(ctx, from, opts...)
			if err != nil {
				return outcome(err, false)
			}
			if e.Revision == 0 {
				e = w.ok(res.Header)
				e.Count = res.Count
			}
			e.KVs = append(e.KVs, kvList(res.Kvs)...)
			if !res.More || len(res.Kvs) == 0 {
				return e
			}
			from = string(res.Kvs[len(res.Kvs)-1].Key) + "\x00"
		}
	case checker.KVPut:
		var opts []clientv3.OpOption
		if inv.PrevKV {
			opts = append(opts, clientv3.WithPrevKV())
		}
		if inv.Lease != 0 {
			opts = append(opts, clientv3.WithLease(clientv3.LeaseID(inv.Lease)))
		}
		res, err := w.cli.Put(ctx, inv.Key, inv.Value, opts...)
		if err != nil {
			return outcome(err, true)
		}
		e := w.ok(res.Header)
		if res.PrevKv != nil {
			e.Prev = kvOf(res.PrevKv)
		}
		return e
	case checker.KVDelete:
		var opts []clientv3.OpOption
		if inv.PrevKV {
			opts = append(opts, clientv3.WithPrevKV())
		}
		res, err := w.cli.Delete(ctx, inv.Key, opts...)
		if err != nil {
			return outcome(err, true)
		}
		e := w.ok(res.Header)
		e.Deleted = res.Deleted
		if len(res.PrevKvs) > 0 {
			e.Prev = kvOf(res.PrevKvs[0])
		}
		return e
	case checker.KVCompact:
		res, err := w.cli.Compact(ctx, inv.CompactRevision)
		if err != nil {
			return outcome(err, true)
		}
		return w.ok(res.Header)
	default:
		var cmps []clientv3.Cmp
		for _, c := range inv.Compares {
			switch c.Target {
			case "value":
				cmps = append(cmps, clientv3.Compare(clientv3.Value(c.Key), c.Op, c.Value))
			case "version":
				cmps = append(cmps, clientv3.Compare(clientv3.Version(c.Key), c.Op, c.Number))
			case "create_revision":
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(c.Key), c.Op, c.Number))
			default:
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(c.Key), c.Op, c.Number))
			}
		}
		res, err := w.cli.Txn(ctx).If(cmps...).Then(txnOps(inv.Then)...).Else(txnOps(inv.Else)...).Commit()
		if err != nil {
			return outcome(err, true)
		}
		e := w.ok(res.Header)
		e.Succeeded = res.Succeeded
		e.Txn = &history.Txn{}
		branch := inv.Else
		if res.Succeeded {
			branch = inv.Then
		}
		for i, r := range res.Responses {
			if i >= len(branch) {
				break
			}
			op := history.TxnOp{F: branch[i].F, Key: branch[i].Key}
			switch {
			case r.GetResponseRange() != nil:
				op.KVs = kvList(r.GetResponseRange().Kvs)
			case r.GetResponseDeleteRange() != nil:
				op.Deleted = r.GetResponseDeleteRange().Deleted
			}
			e.Responses = append(e.Responses, op)
		}
		return e
	}
}

func txnOps(ops []history.TxnOp) []clientv3.Op {
	var out []clientv3.Op
	for _, op := range ops {
		switch op.F {
		case "put":
			out = append(out, clientv3.OpPut(op.Key, op.Value))
		case "delete":
			out = append(out, clientv3.OpDelete(op.Key))
		default:
			out = append(out, clientv3.OpGet(op.Key))
		}
	}
	return out
}

// learn remembers what a completed operation showed of the keys.
func (w *kvWorker) learn(inv, done history.Event) {
	index := func(key string) int {
		var i int
		if _, err := fmt.Sscanf(key, KVPrefix+"k%d", &i); err != nil || i < 0 || i >= len(w.seen) {
			return -1
		}
		return i
	}
	set := func(key string, v *history.KV) {
		if i := index(key); i >= 0 {
			w.seen[i] = v
		}
	}
	// put guesses the key after this worker's own write: right unless
	// others wrote it meanwhile, which is what makes compares fail now and
	// then.
	put := func(key, value string) {
		i := index(key)
		if i < 0 {
			return
		}
		v := &history.KV{Key: key, Value: value, ModRevision: done.Revision, CreateRevision: done.Revision, Version: 1}
		if old := w.seen[i]; old != nil {
			v.CreateRevision, v.Version = old.CreateRevision, old.Version+1
		}
		w.seen[i] = v
	}
	switch inv.F {
	case checker.KVGet, checker.KVGetSerializable:
		if inv.AtRevision > 0 {
			return
		}
		set(inv.Key, nil)
		for _, kv := range done.KVs {
			set(kv.Key, &kv)
		}
	case checker.KVRange, checker.KVRangeSerializable, checker.KVList:
		for _, kv := range done.KVs {
			if !inv.KeysOnly {
				set(kv.Key, &kv)
			}
		}
	case checker.KVPut:
		put(inv.Key, inv.Value)
	case checker.KVDelete:
		set(inv.Key, nil)
	case checker.KVTxn:
		for _, r := range done.Responses {
			if r.F == "get" {
				set(r.Key, nil)
				for _, kv := range r.KVs {
					set(kv.Key, &kv)
				}
			}
		}
		if done.Succeeded {
			for _, op := range inv.Then {
				if op.F == "delete" {
					set(op.Key, nil)
				} else {
					put(op.Key, op.Value)
				}
			}
		}
	}
}

func kvOf(k *mvccpb.KeyValue) *history.KV {
	return &history.KV{Key: string(k.Key), Value: string(k.Value), CreateRevision: k.CreateRevision,
		ModRevision: k.ModRevision, Version: k.Version, Lease: k.Lease}
}

func kvList(ks []*mvccpb.KeyValue) []history.KV {
	var out []history.KV
	for _, k := range ks {
		out = append(out, *kvOf(k))
	}
	return out
}
