package workloads

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

// LeasePrefix is where the lease workload puts its keys.
const LeasePrefix = "/lease/"

// Lease is the lease workload: each worker grants short leases, attaches
// fresh keys to them, keeps some alive (for a while), lets others lapse,
// revokes others, and reads the attached keys before and after each lease
// ends. Reads are linearizable.
type Lease struct {
	Options
	counts Counts
	// TTL is the lease time to live in seconds.
	TTL int64
}

func init() {
	register(Spec{Name: "lease", New: func(o Options) Workload { return NewLease(o) }, Check: checker.Lease})
}

// NewLease returns the lease workload.
func NewLease(o Options) *Lease { return &Lease{Options: o, TTL: 3} }

func (l *Lease) Counts() *Counts { return &l.counts }

// Run drives one worker per client until ctx is done.
func (l *Lease) Run(ctx context.Context, clients []*clientv3.Client, rec *history.Recorder) {
	ps := newProcs(leaseProcessBase)
	l.Options.run(ctx, clients, func(i int, cli *clientv3.Client) func(context.Context) {
		lw := &leaseWorker{actor: l.actor(cli, rec, &l.counts, ps, "lease", i), l: l}
		return lw.step
	})
}

type leaseMode int

const (
	keepAlive leaseMode = iota // kept alive for a while, then left to lapse
	lapse                      // never kept alive
	revoke                     // revoked after a while
)

type ownedLease struct {
	id      clientv3.LeaseID
	mode    leaseMode
	granted time.Time
	renewed time.Time
	// keepUntil is when a kept-alive lease is abandoned.
	keepUntil time.Time
	keys      int
	ended     bool
	endedAt   time.Time
}

type leaseKey struct {
	key   string
	lease *ownedLease
}

type leaseWorker struct {
	actor
	l      *Lease
	seq    int
	leases []*ownedLease
	keys   []leaseKey
}

func (lw *leaseWorker) ttl() time.Duration { return time.Duration(lw.l.TTL) * time.Second }

// step does the most urgent thing: renew a kept lease that is due, else a
// random grant, put, revoke or read. It paces itself so that reads around
// each lease's end are frequent but the history stays small.
func (lw *leaseWorker) step(ctx context.Context) {
	defer func() {
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(10+lw.rand.IntN(30)) * time.Millisecond):
		}
	}()
	now := time.Now()
	lw.prune(now)
	for _, ol := range lw.leases {
		if !ol.ended && ol.mode == keepAlive && now.Before(ol.keepUntil) && now.Sub(ol.renewed) > lw.ttl()/3 {
			lw.keepAlive(ctx, ol)
			return
		}
	}
	active := 0
	for _, ol := range lw.leases {
		if !ol.ended {
			active++
		}
	}
	switch n := lw.rand.IntN(10); {
	case n < 2 && active < 2:
		lw.grant(ctx)
	case n < 4:
		var cands []*ownedLease
		for _, ol := range lw.leases {
			if !ol.ended && ol.keys < 3 && now.Sub(ol.renewed) < lw.ttl()/2 {
				cands = append(cands, ol)
			}
		}
		if len(cands) > 0 {
			lw.put(ctx, cands[lw.rand.IntN(len(cands))])
			return
		}
		lw.read(ctx)
	case n < 5:
		for _, ol := range lw.leases {
			if !ol.ended && ol.mode == revoke && now.Sub(ol.granted) > lw.ttl()/2 {
				lw.revoke(ctx, ol)
				return
			}
		}
		lw.read(ctx)
	default:
		lw.read(ctx)
	}
}

// prune forgets leases (and their keys) well past their end, and marks
// leases that must have lapsed.
func (lw *leaseWorker) prune(now time.Time) {
	for _, ol := range lw.leases {
		if ol.ended {
			continue
		}
		if (ol.mode != keepAlive || now.After(ol.keepUntil)) && now.Sub(ol.renewed) > lw.ttl()+5*time.Second {
			ol.ended, ol.endedAt = true, now
		}
	}
	gone := func(ol *ownedLease) bool { return ol.ended && now.Sub(ol.endedAt) > 5*time.Second }
	keys := lw.keys[:0]
	for _, k := range lw.keys {
		if !gone(k.lease) {
			keys = append(keys, k)
		}
	}
	lw.keys = keys
	leases := lw.leases[:0]
	for _, ol := range lw.leases {
		if !gone(ol) {
			leases = append(leases, ol)
		}
	}
	lw.leases = leases
}

func (lw *leaseWorker) grant(ctx context.Context) {
	inv := history.Event{Type: history.Invoke, F: checker.LeaseGrant, TTL: lw.l.TTL}
	res, err := call(ctx, &lw.actor, inv, true, func(ctx context.Context) (*clientv3.LeaseGrantResponse, error) {
		return lw.cli.Grant(ctx, lw.l.TTL)
	})
	if err != nil {
		return
	}
	e := lw.done(inv, res.ResponseHeader)
	e.Lease, e.TTL = int64(res.ID), res.TTL
	lw.record(e)
	now := time.Now()
	ol := &ownedLease{id: res.ID, mode: leaseMode(lw.rand.IntN(3)), granted: now, renewed: now}
	ol.keepUntil = now.Add(time.Duration(2+lw.rand.IntN(6)) * time.Second)
	lw.leases = append(lw.leases, ol)
}

func (lw *leaseWorker) put(ctx context.Context, ol *ownedLease) {
	lw.seq++
	key := fmt.Sprintf("%s%d-%d", LeasePrefix, lw.proc, lw.seq)
	val := fmt.Sprintf("v%d-%d", lw.proc, lw.seq)
	inv := history.Event{Type: history.Invoke, F: checker.LeasePut, Key: key, Value: val, Lease: int64(ol.id)}
	res, err := call(ctx, &lw.actor, inv, true, func(ctx context.Context) (*clientv3.PutResponse, error) {
		return lw.cli.Put(ctx, key, val, clientv3.WithLease(ol.id))
	})
	// Whatever the outcome, the key may exist now.
	ol.keys++
	lw.keys = append(lw.keys, leaseKey{key, ol})
	if err != nil {
		return
	}
	lw.record(lw.done(inv, res.Header))
}

func (lw *leaseWorker) keepAlive(ctx context.Context, ol *ownedLease) {
	inv := history.Event{Type: history.Invoke, F: checker.LeaseKeepAlive, Lease: int64(ol.id)}
	res, err := call(ctx, &lw.actor, inv, true, func(ctx context.Context) (*clientv3.LeaseKeepAliveResponse, error) {
		return lw.cli.KeepAliveOnce(ctx, ol.id)
	})
	if err != nil {
		if definite(err, true) {
			ol.ended, ol.endedAt = true, time.Now()
		}
		return
	}
	ol.renewed = time.Now()
	e := lw.done(inv, res.ResponseHeader)
	e.TTL = res.TTL
	lw.record(e)
}

func (lw *leaseWorker) revoke(ctx context.Context, ol *ownedLease) {
	inv := history.Event{Type: history.Invoke, F: checker.LeaseRevoke, Lease: int64(ol.id)}
	res, err := call(ctx, &lw.actor, inv, true, func(ctx context.Context) (*clientv3.LeaseRevokeResponse, error) {
		return lw.cli.Revoke(ctx, ol.id)
	})
	ol.ended, ol.endedAt = true, time.Now()
	if err != nil {
		return
	}
	lw.record(lw.done(inv, res.Header))
}

func (lw *leaseWorker) read(ctx context.Context) {
	if len(lw.keys) == 0 {
		return
	}
	k := lw.keys[lw.rand.IntN(len(lw.keys))]
	inv := history.Event{Type: history.Invoke, F: checker.LeaseRead, Key: k.key}
	res, err := call(ctx, &lw.actor, inv, false, func(ctx context.Context) (*clientv3.GetResponse, error) {
		return lw.cli.Get(ctx, k.key)
	})
	if err != nil {
		return
	}
	e := lw.done(inv, res.Header)
	e.KVs = kvs(res.Kvs)
	lw.record(e)
}
