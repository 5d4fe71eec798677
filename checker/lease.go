package checker

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// LeaseChecker is the name in Result.Checker.
const LeaseChecker = "lease"

// Operation names of the lease workload, recorded by its generator
// (workloads/lease.go).
const (
	LeaseGrant     = "lease-grant"
	LeasePut       = "lease-put"
	LeaseKeepAlive = "lease-keepalive"
	LeaseRevoke    = "lease-revoke"
	LeaseRead      = "lease-read"
)

func init() {
	known(plainPutFacts, LeasePut)
	known(readFacts, LeaseRead)
}

func isLeaseOp(f string) bool {
	switch f {
	case LeaseGrant, LeasePut, LeaseKeepAlive, LeaseRevoke, LeaseRead:
		return true
	}
	return false
}

// DefaultLeaseSkew is how late past its TTL a lease may still expire:
// etcd checks expiry every half second and revokes through Raft.
const DefaultLeaseSkew = 2 * time.Second

// leaseAliveMargin is how much earlier than its lower bound a lease may be
// seen gone: the store's lease clock and the history's are different
// clocks.
const leaseAliveMargin = 500 * time.Millisecond

// Lease checks the lease workload with linearizable reads of keys attached
// to leases:
//
//   - a key is gone once its lease's revoke has completed;
//   - a key is gone once its lease has expired: TTL after the last renewal
//     (grant or keep-alive) that may have reached the store, plus skew;
//     every fault window that overlaps that deadline pushes it to the
//     window's end plus TTL plus skew, since etcd's new leader renews every
//     lease and nothing expires without a leader;
//   - a key is never gone while its lease is certainly alive: not revoked
//     and within TTL of a renewal the store certainly processed;
//   - a keep-alive never finds the lease gone while it is certainly alive.
func Lease(_ context.Context, in *Input) Result {
	ops, start := in.Ops, time.Now()
	res := Result{Checker: LeaseChecker}
	if why := nothingToCheck(ops, "lease", isLeaseOp); why != "" {
		res.Verdict, res.Summary = Unknown, why
		res.Seconds = time.Since(start).Seconds()
		return res
	}
	h := collectLeases(ops)
	windows := slices.Clone(in.Faults)
	slices.SortFunc(windows, func(a, b history.Window) int { return int(a.Start - b.Start) })
	var found anomalies
	checked := h.checkReads(windows, DefaultLeaseSkew, &found)
	h.checkKeepAlives(&found)
	what := fmt.Sprintf("%s of %s attached to %s", plural(checked, "read"), plural(len(h.keys), "key"), plural(len(h.leases), "lease"))
	switch {
	case len(found.order) > 0:
		res.Verdict = Invalid
		res.Summary = fmt.Sprintf("lease guarantees broken: %s (%s)", found.summary(), what)
		found.result(&res)
	default:
		res.Verdict = Valid
		res.Summary = "keys live exactly as long as their leases: " + what
	}
	res.Seconds = time.Since(start).Seconds()
	return res
}

// leaseHistory is what the lease workload's operations tell of its leases
// and keys.
type leaseHistory struct {
	leases map[int64]*leaseInfo
	keys   map[string]*leasedKey
	// reads are the ok reads; notFound the keep-alives that found their
	// lease gone.
	reads, notFound []history.Op
}

type leaseInfo struct {
	ttl      int64
	renewals []renewal
	// revokedOK is when the first successful revoke completed;
	// revokeInvoked when the first revoke of any outcome was invoked.
	revokedOK, revokeInvoked int64
	revokeDesc               string
}

// renewal is a grant or keep-alive; ok is false when its outcome is
// unknown.
type renewal struct {
	inv, comp int64
	ttl       int64
	ok        bool
}

// leasedKey is a key and the last put of it, with the lease it attached.
type leasedKey struct {
	lease int64
	put   history.Op
}

func collectLeases(ops []history.Op) *leaseHistory {
	h := &leaseHistory{leases: map[int64]*leaseInfo{}, keys: map[string]*leasedKey{}}
	for _, op := range ops {
		c := op.Complete
		switch op.F {
		case LeaseGrant:
			if c.Type == history.OK {
				l := h.lease(c.Lease)
				l.ttl = c.TTL
				l.renewals = append(l.renewals, renewal{op.Invoke.Time, c.Time, c.TTL, true})
			}
		case LeaseKeepAlive:
			l := h.lease(op.Invoke.Lease)
			switch {
			case c.Type == history.OK && c.TTL > 0:
				l.renewals = append(l.renewals, renewal{op.Invoke.Time, c.Time, c.TTL, true})
			case c.Type == history.Info:
				l.renewals = append(l.renewals, renewal{op.Invoke.Time, c.Time, 0, false})
			case c.Type == history.Fail && strings.Contains(c.Error, "not found"), c.Type == history.OK && c.TTL <= 0:
				h.notFound = append(h.notFound, op)
			}
		case LeaseRevoke:
			l := h.lease(op.Invoke.Lease)
			l.revokeInvoked = min(l.revokeInvoked, op.Invoke.Time)
			if c.Type == history.OK && c.Time < l.revokedOK {
				l.revokedOK = c.Time
				l.revokeDesc = fmt.Sprintf("revoked by process %d at %s (ok at %s, revision %d)", op.Process, seconds(op.Invoke.Time), seconds(c.Time), c.Revision)
			}
		case LeasePut:
			h.keys[op.Invoke.Key] = &leasedKey{lease: op.Invoke.Lease, put: op}
		case LeaseRead:
			if c.Type == history.OK {
				h.reads = append(h.reads, op)
			}
		}
	}
	return h
}

// lease is lease id, created on first mention.
func (h *leaseHistory) lease(id int64) *leaseInfo {
	l := h.leases[id]
	if l == nil {
		l = &leaseInfo{revokedOK: math.MaxInt64, revokeInvoked: math.MaxInt64}
		h.leases[id] = l
	}
	return l
}

// deadline is the latest time the lease may still exist, given the fault
// windows in start order (ignoring revokes).
func (l *leaseInfo) deadline(windows []history.Window, skew time.Duration) int64 {
	ttl := time.Duration(l.ttl) * time.Second
	var last int64
	for _, r := range l.renewals {
		t := r.comp
		if !r.ok {
			t = r.comp + int64(skew) // an unanswered keep-alive may land late
		}
		last = max(last, t)
	}
	d := last + int64(ttl+skew)
	for range 2 {
		for _, w := range windows {
			if w.Start > d {
				break
			}
			end := w.Stop
			if end < 0 {
				return math.MaxInt64
			}
			d = max(d, end+int64(ttl+skew))
		}
	}
	return d
}

// aliveUntil is the earliest time the lease may be gone, by the renewals
// that completed before a time (ignoring revokes).
func (l *leaseInfo) aliveUntil(before int64) int64 {
	var a int64
	for _, r := range l.renewals {
		if r.ok && r.comp <= before {
			a = max(a, r.inv+r.ttl*int64(time.Second)-int64(leaseAliveMargin))
		}
	}
	return a
}

// checkReads checks that each read of a key attached to a lease found it
// exactly while the lease lived, and returns how many it checked.
func (h *leaseHistory) checkReads(windows []history.Window, skew time.Duration, found *anomalies) int {
	checked := 0
	for _, op := range h.reads {
		k := h.keys[op.Invoke.Key]
		if k == nil || k.lease == 0 {
			continue
		}
		l := h.leases[k.lease]
		if l == nil || l.ttl == 0 {
			continue
		}
		checked++
		c := op.Complete
		where := fmt.Sprintf("read of %s by process %d at %s..%s (lease %x, TTL %ds)", quoteKey(op.Invoke.Key), op.Process,
			seconds(op.Invoke.Time), seconds(c.Time), k.lease, l.ttl)
		present := len(c.KVs) > 0 && c.KVs[0].Lease == k.lease
		if present {
			switch {
			case l.revokedOK < op.Invoke.Time:
				found.add("key survives revoke", "%s found the key, but its lease was %s", where, l.revokeDesc)
			case op.Invoke.Time > l.deadline(windows, skew):
				found.add("key outlives lease", "%s found the key, but its lease expired by %s at the latest (TTL after the last renewal, plus %s, extended by faults)",
					where, seconds(l.deadline(windows, skew)), skew)
			}
			continue
		}
		put := k.put
		if put.Type() != history.OK || put.Complete.Time > op.Invoke.Time || l.revokeInvoked < c.Time {
			continue
		}
		if a := l.aliveUntil(op.Invoke.Time); c.Time < a {
			found.add("key gone while lease alive", "%s found no key, though %s attached it to the lease at %s and the lease was renewed to live until at least %s and never revoked",
				where, describeWriteOp(put), seconds(put.Complete.Time), seconds(a+int64(leaseAliveMargin)))
		}
	}
	return checked
}

// checkKeepAlives checks that no keep-alive found its lease gone while it
// was certainly alive.
func (h *leaseHistory) checkKeepAlives(found *anomalies) {
	for _, op := range h.notFound {
		l := h.leases[op.Invoke.Lease]
		if l == nil || l.revokeInvoked < op.Complete.Time {
			continue
		}
		if a := l.aliveUntil(op.Invoke.Time); op.Complete.Time < a {
			found.add("lease gone early", "keep-alive of lease %x by process %d at %s..%s found it gone, though it was renewed to live until at least %s and never revoked",
				op.Invoke.Lease, op.Process, seconds(op.Invoke.Time), seconds(op.Complete.Time), seconds(a+int64(leaseAliveMargin)))
		}
	}
}
