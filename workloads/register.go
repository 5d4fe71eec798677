package workloads

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

// Register is a set of independent registers, one per key, that workers
// read, write with unique values and compare-and-set.
//
// Each key retires after OpsPerKey operations and a fresh key takes its
// place, as in Jepsen: the cost of checking a key grows steeply with the
// operations on it, so bounding them keeps long runs checkable.
type Register struct {
	Options
	counts Counts
	// used counts operations per key slot; slot i's current key is
	// k<i>.<used/OpsPerKey>.
	used []atomic.Int64
}

func init() {
	register(Spec{Name: "register", New: func(o Options) Workload { return NewRegister(o) }, Check: checker.Register})
}

// NewRegister returns the register workload.
func NewRegister(o Options) *Register { return &Register{Options: o} }

func (r *Register) Counts() *Counts { return &r.counts }

// Run drives one worker per client until ctx is done.
func (r *Register) Run(ctx context.Context, clients []*clientv3.Client, rec *history.Recorder) {
	r.used = make([]atomic.Int64, r.Keys)
	r.Options.run(ctx, clients, func(w int, cli *clientv3.Client) func(context.Context) {
		wk := &worker{r: r, cli: cli, rec: rec, process: history.Process(w), step: len(clients),
			rand: r.Options.rand("register", w), seen: map[string]string{}}
		return wk.next
	})
}

type worker struct {
	r       *Register
	cli     *clientv3.Client
	rec     *history.Recorder
	process history.Process
	step    int
	rand    *rand.Rand
	seq     int
	// seen is the last value this worker read or wrote per key: a cas
	// against it has a fair chance of succeeding.
	seen map[string]string
}

// next invokes one random operation and records its outcome.
func (w *worker) next(ctx context.Context) {
	slot := w.rand.IntN(w.r.Keys)
	n := w.r.used[slot].Add(1) - 1
	key := fmt.Sprintf("k%d.%d", slot, n/int64(w.r.OpsPerKey))
	inv := history.Event{Type: history.Invoke, Process: w.process, Key: key}
	switch n := w.rand.IntN(4); {
	case n < 2:
		inv.F = history.Read
	case n == 2:
		inv.F = history.Write
		inv.Value = w.value()
	default:
		inv.F = history.CAS
		inv.Expect = w.seen[key]
		inv.Value = w.value()
	}
	w.rec.Record(inv)

	octx, cancel := context.WithTimeout(ctx, w.r.OpTimeout)
	done := w.do(octx, inv)
	cancel()
	done.Process, done.F, done.Key = w.process, inv.F, key

	w.r.counts.add(done.Type)
	if done.Type == history.OK {
		switch {
		case inv.F == history.Read:
			w.seen[key] = done.Value
		case inv.F == history.Write || done.Succeeded:
			w.seen[key] = inv.Value
		}
	}
	w.rec.Record(done)
	if done.Type == history.Info {
		w.process += history.Process(w.step)
	}
}

// value returns a value no other write in the test uses, so a read names
// the one write it observed.
func (w *worker) value() string {
	w.seq++
	return fmt.Sprintf("%d-%d", w.process, w.seq)
}

func (w *worker) do(ctx context.Context, inv history.Event) history.Event {
	switch inv.F {
	case history.Read:
		res, err := w.cli.Get(ctx, inv.Key)
		if err != nil {
			return outcome(err, false)
		}
		e := w.ok(res.Header.MemberId, res.Header.Revision)
		if len(res.Kvs) > 0 {
			e.Value = string(res.Kvs[0].Value)
		}
		return e
	case history.Write:
		res, err := w.cli.Put(ctx, inv.Key, inv.Value)
		if err != nil {
			return outcome(err, true)
		}
		return w.ok(res.Header.MemberId, res.Header.Revision)
	default:
		// A key that does not exist has value "": compare its create
		// revision instead, since etcd's value compare needs a key.
		cmp := clientv3.Compare(clientv3.Value(inv.Key), "=", inv.Expect)
		if inv.Expect == "" {
			cmp = clientv3.Compare(clientv3.CreateRevision(inv.Key), "=", 0)
		}
		res, err := w.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(inv.Key, inv.Value)).Commit()
		if err != nil {
			return outcome(err, true)
		}
		e := w.ok(res.Header.MemberId, res.Header.Revision)
		e.Succeeded = res.Succeeded
		return e
	}
}

func (w *worker) ok(member uint64, rev int64) history.Event {
	return history.Event{Type: history.OK, Member: w.r.Members[member], Revision: rev}
}
