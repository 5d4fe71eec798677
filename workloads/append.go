package workloads

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

// Key prefixes and process ids of the transactional workloads, apart from
// every other workload's.
const (
	AppendPrefix      = "/append/"
	WRPrefix          = "/wr/"
	appendProcessBase = 500_000
	wrProcessBase     = 600_000
)

// Txns is a transactional workload, append or wr, as Jepsen runs them
// against etcd: each operation is one etcd Txn of one to four
// micro-operations over the keys in use, checked as Elle checks them
// (checker.Append, checker.WR).
//
// In append, a key holds a list (its elements in decimal, separated by
// spaces) and a micro-operation reads it or appends a unique element. The
// append is a read-modify-write: the worker first reads the keys it will
// append to, then sends one Txn whose compares require each of them
// unchanged (same mod_revision) and whose Then holds the micro-operations
// in order, each append a put of the list it read plus its elements. The
// Txn is atomic, so the read-modify-write is too; one whose compare fails
// did nothing and is a fail, never retried. In wr, keys are registers and
// micro-operations read them or write unique values, in one unguarded Txn.
//
// A Txn that writes is never retried: an ambiguous error leaves it of
// unknown outcome (info). A key retires after OpsPerKey micro-operations
// and a fresh one takes its slot, so lists stay short. Transactions that
// only read follow ReadConsistency; the checker then checks serializable
// rather than strict serializable.
type Txns struct {
	Options
	kind   string // checker.AppendTxn or checker.WRTxn
	prefix string
	counts Counts
	procs  processes
	// used counts micro-operations per key slot; slot i's current key is
	// <prefix>k<i>.<used/OpsPerKey>.
	used []atomic.Int64
	// next is the last element or value handed out: unique over the run.
	next atomic.Int64
}

func init() {
	register(Spec{Name: "append", New: func(o Options) Workload { return newTxns(o, checker.AppendTxn) }, Check: checker.Append})
}

func newTxns(o Options, kind string) *Txns {
	t := &Txns{Options: o, kind: kind, prefix: AppendPrefix}
	base := int64(appendProcessBase)
	if kind == checker.WRTxn {
		t.prefix, base = WRPrefix, wrProcessBase
	}
	t.procs.from(base)
	return t
}

func (t *Txns) Counts() *Counts { return &t.counts }

// Run drives one worker per client until ctx is done.
func (t *Txns) Run(ctx context.Context, clients []*clientv3.Client, rec *history.Recorder) {
	t.used = make([]atomic.Int64, max(1, t.Keys))
	t.Options.run(ctx, clients, func(w int, cli *clientv3.Client) func(context.Context) {
		wk := &txnWorker{t: t, cli: cli, rec: rec, process: t.newProcess(), rand: t.Options.rand(t.kind, w)}
		return wk.next
	})
}

func (t *Txns) newProcess() history.Process { return t.procs.new() }

type txnWorker struct {
	t       *Txns
	cli     *clientv3.Client
	rec     *history.Recorder
	process history.Process
	rand    *rand.Rand
}

// write is the name of the workload's writing micro-operation.
func (t *Txns) write() string {
	if t.kind == checker.WRTxn {
		return checker.MopWrite
	}
	return checker.MopAppend
}

// txn makes one transaction's micro-operations: one to four, each on a
// key in use, half of them writes. etcd refuses a Txn that puts one key
// twice, so a second write of a key becomes a read.
func (w *txnWorker) txn() (ops []history.TxnOp, readOnly bool) {
	readOnly = true
	written := map[string]bool{}
	for range 1 + w.rand.IntN(4) {
		slot := w.rand.IntN(len(w.t.used))
		n := w.t.used[slot].Add(1) - 1
		key := fmt.Sprintf("%sk%d.%d", w.t.prefix, slot, n/int64(max(1, w.t.OpsPerKey)))
		if w.rand.IntN(2) == 0 && !written[key] {
			written[key] = true
			readOnly = false
			ops = append(ops, history.TxnOp{F: w.t.write(), Key: key, Value: strconv.FormatInt(w.t.next.Add(1), 10)})
			continue
		}
		ops = append(ops, history.TxnOp{F: checker.MopRead, Key: key})
	}
	return ops, readOnly
}

// next invokes one transaction and records its outcome.
func (w *txnWorker) next(ctx context.Context) {
	ops, readOnly := w.txn()
	inv := history.Event{Type: history.Invoke, Process: w.process, F: w.t.kind, Txn: &history.Txn{Then: ops}}
	if readOnly {
		switch w.t.ReadConsistency {
		case Serializable:
			inv.Serializable = true
		case Mixed:
			inv.Serializable = w.rand.IntN(2) == 0
		}
	}
	w.rec.Record(inv)
	octx, cancel := context.WithTimeout(ctx, w.t.OpTimeout)
	done := w.do(octx, inv, readOnly)
	cancel()
	done.Process, done.F = w.process, inv.F
	w.t.counts.add(done.Type)
	w.rec.Record(done)
	if done.Type == history.Info {
		w.process = w.t.newProcess()
	}
}

// do runs one transaction. An append first reads the keys it appends to
// (a failure there wrote nothing); then one Txn, guarded by their
// mod_revisions for append, runs the micro-operations in order.
func (w *txnWorker) do(ctx context.Context, inv history.Event, readOnly bool) history.Event {
	var cmps []clientv3.Cmp
	lists := map[string]string{}
	if w.t.kind == checker.AppendTxn && !readOnly {
		var gets []clientv3.Op
		var keys []string
		for _, op := range inv.Then {
			if op.F == checker.MopAppend {
				gets = append(gets, clientv3.OpGet(op.Key))
				keys = append(keys, op.Key)
			}
		}
		res, err := w.cli.Txn(ctx).Then(gets...).Commit()
		if err != nil {
			return history.Event{Type: history.Fail, Error: "reading the lists to append to: " + err.Error()}
		}
		for i, k := range keys {
			var rev int64
			if i >= len(res.Responses) {
				return history.Event{Type: history.Fail, Error: fmt.Sprintf("reading the lists to append to: %d answers to %d gets", len(res.Responses), len(gets))}
			}
			if kvs := res.Responses[i].GetResponseRange().GetKvs(); len(kvs) > 0 {
				lists[k], rev = string(kvs[0].Value), kvs[0].ModRevision
			}
			// A missing key's mod_revision compares as 0.
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", rev))
		}
	}
	var ops []clientv3.Op
	for _, op := range inv.Then {
		switch op.F {
		case checker.MopRead:
			var opts []clientv3.OpOption
			if inv.Serializable {
				opts = append(opts, clientv3.WithSerializable())
			}
			ops = append(ops, clientv3.OpGet(op.Key, opts...))
		case checker.MopAppend:
			if l := lists[op.Key]; l != "" {
				lists[op.Key] = l + " " + op.Value
			} else {
				lists[op.Key] = op.Value
			}
			ops = append(ops, clientv3.OpPut(op.Key, lists[op.Key]))
		default:
			ops = append(ops, clientv3.OpPut(op.Key, op.Value))
		}
	}
	res, err := w.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return outcome(err, !readOnly)
	}
	if !res.Succeeded {
		return history.Event{Type: history.Fail, Error: "a list changed between its read and the append: the guard failed, nothing was written"}
	}
	e := history.Event{Type: history.OK, Member: w.t.Members[res.Header.MemberId], Revision: res.Header.Revision, Txn: &history.Txn{}}
	for i, op := range inv.Then {
		if i >= len(res.Responses) {
			break // the checker says what is missing
		}
		r := history.TxnOp{F: op.F, Key: op.Key, Value: op.Value}
		if op.F == checker.MopRead {
			r.Value = ""
			if rr := res.Responses[i].GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
				r.Value = string(rr.Kvs[0].Value)
			}
		}
		e.Responses = append(e.Responses, r)
	}
	return e
}
