package checker

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// simulateKubernetes records a correct store under the kubernetes
// workload: n conditional writes on nKeys pods (a fifth of them on a stale
// mod_revision, refused), one informer that listed the empty prefix at
// revision 1 and then watched every revision, and the final read.
func simulateKubernetes(seed uint64, n, nKeys int) []history.Op {
	rng := rand.New(rand.NewPCG(seed, seed))
	sim := &simOps{}
	op := sim.add
	end := "/registry/pods0"
	op(50, K8sList, history.Event{WatchID: "i", Key: K8sPrefix, RangeEnd: end, Limit: 4}, history.Event{WatchID: "i", Revision: 1})
	state := map[string]history.KV{}
	var events [][]history.WatchEvent
	rev := int64(1)
	for i := range n {
		p := history.Process(i % 10)
		k := fmt.Sprintf("%sdefault/pod-%d", K8sPrefix, rng.IntN(nKeys))
		v := fmt.Sprintf("o%d", i)
		cur, exists := state[k]
		stale := rng.IntN(5) == 0
		switch f := rng.IntN(3); {
		case f == 0 || !exists:
			if exists {
				op(p, K8sCreate, history.Event{Key: k, Value: v}, history.Event{Key: k, Revision: rev, KVs: []history.KV{cur}})
				continue
			}
			rev++
			kv := history.KV{Key: k, Value: v, CreateRevision: rev, ModRevision: rev, Version: 1}
			state[k] = kv
			events = append(events, []history.WatchEvent{{Type: "put", KV: kv}})
			op(p, K8sCreate, history.Event{Key: k, Value: v}, history.Event{Key: k, Revision: rev, Succeeded: true})
		default:
			fname := K8sUpdate
			if f == 2 {
				fname = K8sDelete
			}
			inv := history.Event{Key: k, ExpectRevision: cur.ModRevision}
			if fname == K8sUpdate {
				inv.Value = v
			}
			if stale {
				inv.ExpectRevision = cur.ModRevision - 1
				op(p, fname, inv, history.Event{Key: k, Revision: rev, KVs: []history.KV{cur}})
				continue
			}
			rev++
			prev := cur
			if fname == K8sUpdate {
				kv := history.KV{Key: k, Value: v, CreateRevision: cur.CreateRevision, ModRevision: rev, Version: cur.Version + 1}
				state[k] = kv
				events = append(events, []history.WatchEvent{{Type: "put", KV: kv, PrevKV: &prev}})
			} else {
				delete(state, k)
				events = append(events, []history.WatchEvent{{Type: "delete", KV: history.KV{Key: k, ModRevision: rev}, PrevKV: &prev}})
			}
			op(p, fname, inv, history.Event{Key: k, Revision: rev, Succeeded: true})
		}
	}
	op(50, K8sWatchOpen, history.Event{WatchID: "i", Key: K8sPrefix, RangeEnd: end, StartRevision: 2, PrevKV: true},
		history.Event{WatchID: "i", Created: true, Revision: 1})
	for _, evs := range events {
		op(50, K8sWatchRecv, history.Event{WatchID: "i"}, history.Event{WatchID: "i", Revision: rev, WatchEvents: evs})
	}
	var final []history.KV
	for i := range nKeys {
		if kv, ok := state[fmt.Sprintf("%sdefault/pod-%d", K8sPrefix, i)]; ok {
			final = append(final, kv)
		}
	}
	op(99, K8sRead, history.Event{Key: K8sPrefix, RangeEnd: end}, history.Event{Revision: rev, KVs: final})
	return sim.ops
}

// simulateLease records leases of TTL 3 s granted one after another: each
// with a key, some kept alive, some revoked, read before and well after
// their end.
func simulateLease(seed uint64, nLeases int) []history.Op {
	rng := rand.New(rand.NewPCG(seed, seed))
	var ops []history.Op
	s := int64(time.Second)
	op := func(p history.Process, f string, at int64, inv, done history.Event) {
		inv.Type, inv.Process, inv.F, inv.Time = history.Invoke, p, f, at
		if done.Type == "" {
			done.Type = history.OK
		}
		done.Process, done.F, done.Time = p, f, at+s/100
		ops = append(ops, history.Op{Process: p, F: f, Invoke: &inv, Complete: &done})
	}
	for i := range nLeases {
		p := history.Process(i)
		id := int64(1000 + i)
		t := int64(i) * s / 10
		k := fmt.Sprintf("/lease/%d", i)
		kv := []history.KV{{Key: k, Value: "v", Lease: id}}
		op(p, LeaseGrant, t, history.Event{TTL: 3}, history.Event{Lease: id, TTL: 3})
		op(p, LeasePut, t+s/10, history.Event{Key: k, Value: "v", Lease: id}, history.Event{Key: k})
		op(p, LeaseRead, t+s, history.Event{Key: k}, history.Event{Key: k, KVs: kv})
		switch rng.IntN(3) {
		case 0: // kept alive for 4 s, then lapses
			for j := int64(1); j <= 4; j++ {
				op(p, LeaseKeepAlive, t+j*s, history.Event{Lease: id}, history.Event{Lease: id, TTL: 3})
			}
			op(p, LeaseRead, t+6*s, history.Event{Key: k}, history.Event{Key: k, KVs: kv})
			op(p, LeaseRead, t+10*s, history.Event{Key: k}, history.Event{Key: k})
		case 1: // revoked
			op(p, LeaseRevoke, t+2*s, history.Event{Lease: id}, history.Event{Lease: id})
			op(p, LeaseRead, t+3*s, history.Event{Key: k}, history.Event{Key: k})
		default: // lapses
			op(p, LeaseRead, t+2*s, history.Event{Key: k}, history.Event{Key: k, KVs: kv})
			op(p, LeaseRead, t+6*s, history.Event{Key: k}, history.Event{Key: k})
		}
	}
	return ops
}

func TestKubernetesSimulated(t *testing.T) {
	ops := simulateKubernetes(5, 3000, 6)
	if res := Kubernetes(t.Context(), &Input{Ops: ops}); res.Verdict != Valid {
		t.Fatalf("simulated correct store: %s: %s %q", res.Verdict, res.Summary, res.Anomalies)
	}
	// Turn one refused update into a successful one: a stale update.
	for i := range ops {
		if ops[i].F == K8sUpdate && !ops[i].Complete.Succeeded && i > len(ops)/2 {
			ops[i].Complete.Succeeded = true
			ops[i].Complete.KVs = nil
			break
		}
	}
	if res := Kubernetes(t.Context(), &Input{Ops: ops}); res.Verdict != Invalid || !strings.Contains(res.Summary, "stale update") {
		t.Fatalf("stale update: %s: %s", res.Verdict, res.Summary)
	}
}

func TestLeaseSimulated(t *testing.T) {
	ops := simulateLease(5, 500)
	if res := Lease(t.Context(), &Input{Ops: ops}); res.Verdict != Valid {
		t.Fatalf("simulated correct leases: %s: %s %q", res.Verdict, res.Summary, res.Anomalies)
	}
}

func BenchmarkKubernetes(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		ops := simulateKubernetes(1, n, 20)
		b.Run(plural(n, "write"), func(b *testing.B) {
			for b.Loop() {
				if res := Kubernetes(b.Context(), &Input{Ops: ops}); res.Verdict != Valid {
					b.Fatalf("%s: %s", res.Verdict, res.Summary)
				}
			}
		})
	}
}

func BenchmarkLease(b *testing.B) {
	ops := simulateLease(1, 20_000)
	b.Run(plural(len(ops), "op"), func(b *testing.B) {
		for b.Loop() {
			if res := Lease(b.Context(), &Input{Ops: ops}); res.Verdict != Valid {
				b.Fatalf("%s: %s", res.Verdict, res.Summary)
			}
		}
	})
}
