package workloads

import (
	"context"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/history"
)

// actor is what every writer, watcher and informer of the watch, kubernetes
// and lease workloads shares: the client it calls, where it records, and
// the process it records as, which it trades for a fresh one after an info.
type actor struct {
	cli       *clientv3.Client
	rec       *history.Recorder
	counts    *Counts
	members   map[uint64]string
	opTimeout time.Duration
	ps        *procs
	proc      history.Process
	rand      *rand.Rand
}

// actor returns actor i of the role with a fresh process and its own
// random source.
func (o Options) actor(cli *clientv3.Client, rec *history.Recorder, counts *Counts, ps *procs, role string, i int) actor {
	return actor{cli: cli, rec: rec, counts: counts, members: o.Members, opTimeout: o.OpTimeout, ps: ps, proc: ps.get(),
		rand: o.rand(role, i)}
}

// record records e as this actor's process and counts it if it ends an
// operation.
func (a *actor) record(e history.Event) {
	e.Process = a.proc
	if e.Type != history.Invoke {
		a.counts.add(e.Type)
	}
	a.rec.Record(e)
	if e.Type == history.Info {
		a.proc = a.ps.get()
	}
}

type header interface {
	GetRevision() int64
	GetMemberId() uint64
}

// ok is a success at the revision and from the member the header h names.
func (a *actor) ok(h header) history.Event {
	return history.Event{Type: history.OK, Revision: h.GetRevision(), Member: a.members[h.GetMemberId()]}
}

// call records inv and runs op under the operation timeout. On failure it
// records the outcome, naming the operation as inv does, and returns the
// error; mutates says whether op writes.
func call[R any](ctx context.Context, a *actor, inv history.Event, mutates bool, op func(context.Context) (R, error)) (R, error) {
	a.record(inv)
	octx, cancel := context.WithTimeout(ctx, a.opTimeout)
	res, err := op(octx)
	cancel()
	if err != nil {
		a.record(sameOp(outcome(err, mutates), inv))
	}
	return res, err
}

// done is the success ending inv, naming the operation as inv does.
func (a *actor) done(inv history.Event, h header) history.Event {
	return sameOp(a.ok(h), inv)
}

// sameOp gives the completion e the fields that name inv's operation.
func sameOp(e, inv history.Event) history.Event {
	e.F, e.Key, e.Lease, e.WatchID = inv.F, inv.Key, inv.Lease, inv.WatchID
	return e
}
