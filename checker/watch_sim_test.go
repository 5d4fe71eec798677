package checker

import (
	"fmt"
	"math/rand/v2"

	"github.com/faultline/faultline/history"
)

// simulateWatch records a correct store: nWrites puts, deletes and two-key
// txns on nKeys keys under the watch prefix, and nWatchers watchers (every
// third on a single key, every other with prev_kv) that each see every
// revision from 1, in responses of one to three revisions, reopening now
// and then where they stopped; then the final read.
func simulateWatch(seed uint64, nWrites, nKeys, nWatchers int) []history.Op {
	rng := rand.New(rand.NewPCG(seed, seed))
	sim := &simOps{}
	op := sim.add
	type change struct {
		rev    int64
		events []history.WatchEvent
	}
	state := map[string]history.KV{}
	var log []change
	rev := int64(1)
	key := func(i int) string { return fmt.Sprintf("%sk%d", WatchPrefix, i) }
	put := func(k, v string) history.WatchEvent {
		prev, ok := state[k]
		kv := history.KV{Key: k, Value: v, ModRevision: rev, CreateRevision: rev, Version: 1}
		e := history.WatchEvent{Type: "put"}
		if ok {
			kv.CreateRevision, kv.Version = prev.CreateRevision, prev.Version+1
			e.PrevKV = &prev
		}
		e.KV = kv
		state[k] = kv
		return e
	}
	for i := range nWrites {
		p := history.Process(i % 10)
		v := fmt.Sprintf("v%d", i)
		switch n := rng.IntN(10); {
		case n < 6:
			k := key(rng.IntN(nKeys))
			rev++
			e := put(k, v)
			log = append(log, change{rev, []history.WatchEvent{e}})
			op(p, WatchPut, history.Event{Key: k, Value: v}, history.Event{Key: k, Revision: rev})
		case n < 8:
			k := key(rng.IntN(nKeys))
			prev, ok := state[k]
			if !ok {
				op(p, WatchDelete, history.Event{Key: k}, history.Event{Key: k, Revision: rev})
				continue
			}
			rev++
			delete(state, k)
			log = append(log, change{rev, []history.WatchEvent{{Type: "delete", KV: history.KV{Key: k, ModRevision: rev}, PrevKV: &prev}}})
			op(p, WatchDelete, history.Event{Key: k}, history.Event{Key: k, Revision: rev, Deleted: 1})
		default:
			a, b := rng.IntN(nKeys), rng.IntN(nKeys)
			if a == b {
				b = (a + 1) % nKeys
			}
			rev++
			kvs := []history.KV{{Key: key(a), Value: v + "a"}, {Key: key(b), Value: v + "b"}}
			log = append(log, change{rev, []history.WatchEvent{put(kvs[0].Key, kvs[0].Value), put(kvs[1].Key, kvs[1].Value)}})
			op(p, WatchTxn, history.Event{KVs: kvs}, history.Event{Revision: rev})
		}
	}
	for w := range nWatchers {
		p := history.Process(1000 + w)
		id := fmt.Sprintf("w%d", w)
		k, end := WatchPrefix, WatchPrefix[:len(WatchPrefix)-1]+"0"
		if w%3 == 2 {
			k, end = key(w%nKeys), ""
		}
		prevKV := w%2 == 0
		next := int64(1)
		open := func() {
			op(p, WatchOpen, history.Event{WatchID: id, Key: k, RangeEnd: end, StartRevision: next, PrevKV: prevKV},
				history.Event{WatchID: id, Created: true, Revision: rev})
		}
		open()
		for i := 0; i < len(log); {
			var evs []history.WatchEvent
			for n := 1 + rng.IntN(3); n > 0 && i < len(log); n-- {
				for _, e := range log[i].events {
					if !inRange(e.KV.Key, k, end) {
						continue
					}
					if !prevKV {
						e.PrevKV = nil
					}
					evs = append(evs, e)
				}
				next = log[i].rev + 1
				i++
			}
			if len(evs) > 0 {
				op(p, WatchRecv, history.Event{WatchID: id}, history.Event{WatchID: id, Revision: rev, WatchEvents: evs})
			}
			if rng.IntN(200) == 0 {
				op(p, WatchRecv, history.Event{WatchID: id}, history.Event{Type: history.Fail, WatchID: id, Error: "closed by the watcher to reopen"})
				open()
			}
		}
		op(p, WatchRecv, history.Event{WatchID: id}, history.Event{WatchID: id, Revision: rev, Progress: true})
		op(p, WatchRecv, history.Event{WatchID: id}, history.Event{Type: history.Fail, WatchID: id, Error: "closed"})
	}
	var final []history.KV
	for i := range nKeys {
		if kv, ok := state[key(i)]; ok {
			final = append(final, kv)
		}
	}
	op(history.Process(999), WatchRead, history.Event{Key: WatchPrefix, RangeEnd: WatchPrefix[:len(WatchPrefix)-1] + "0"},
		history.Event{Key: WatchPrefix, Revision: rev, KVs: final})
	return sim.ops
}

// simOps records simulated operations one after another, each invoked
// 1µs after the last completed and taking 1µs; a completion left without
// a type is ok.
type simOps struct {
	ops []history.Op
	now int64
}

func (s *simOps) add(p history.Process, f string, inv, done history.Event) {
	s.now += 1000
	inv.Type, inv.Process, inv.F, inv.Time = history.Invoke, p, f, s.now
	s.now += 1000
	if done.Type == "" {
		done.Type = history.OK
	}
	done.Process, done.F, done.Time = p, f, s.now
	s.ops = append(s.ops, history.Op{Process: p, F: f, Invoke: &inv, Complete: &done})
}
