package checker

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/faultline/faultline/history"
)

// genKVHistory simulates n kv operations of ten concurrent clients against
// a correct etcd on eight keys and returns the history. A fraction info of
// all operations, all of them writes, end in info; most of those take
// effect, some do not. One get in five is serializable, served by the
// client's member a few revisions behind, never going back.
func genKVHistory(n int, info float64, seed uint64) []history.Op {
	ops, _ := genKVHistoryLog(n, info, seed)
	return ops
}

// genKVHistoryLog is genKVHistory with the commit log of what the store
// committed, every revision of it seen, as a recorder watching the whole
// keyspace would give it.
func genKVHistoryLog(n int, info float64, seed uint64) ([]history.Op, *CommitLog) {
	return genKVWatchHistoryLog(n, info, seed, 0)
}

// genKVWatchHistoryLog is genKVHistoryLog with a fraction watch of the puts
// and deletes made by the watch workload's writers instead, on keys of
// their own, as a run of --workload kv,watch has them.
func genKVWatchHistoryLog(n int, info float64, seed uint64, watch float64) ([]history.Op, *CommitLog) {
	r := rand.New(rand.NewPCG(seed, 0x6b76))
	log := &CommitLog{}
	const procs, nkeys, watchKeys = 10, 8, 4
	type key struct {
		val              string
		create, mod, ver int64
	}
	rev := int64(1)
	state := make([]key, nkeys+watchKeys)
	// states[i] is the state at revision i+1.
	states := [][]key{slices.Clone(state)}
	name := func(i int) string {
		if i >= nkeys {
			return fmt.Sprintf("%sk%d", WatchPrefix, i-nkeys)
		}
		return fmt.Sprintf("/kv/k%03d", i)
	}
	kvOf := func(s []key, i int) []history.KV {
		if s[i].val == "" {
			return nil
		}
		return []history.KV{{Key: name(i), Value: s[i].val, CreateRevision: s[i].create, ModRevision: s[i].mod, Version: s[i].ver}}
	}
	put := func(i int, v string) {
		k := state[i]
		if k.val == "" {
			k = key{create: rev}
		}
		k.val, k.mod = v, rev
		k.ver++
		state[i] = k
		log.Commits = append(log.Commits, Commit{Revision: rev, Key: name(i), Value: v})
	}
	del := func(i int) {
		if state[i].val != "" {
			log.Commits = append(log.Commits, Commit{Revision: rev, Key: name(i), Delete: true})
		}
		state[i] = key{}
	}
	commit := func() {
		states = append(states, slices.Clone(state))
	}

	var events []history.Event
	free := make([]int64, procs)
	pid := make([]history.Process, procs)
	for p := range pid {
		pid[p] = history.Process(p)
	}
	nextPid := history.Process(procs)
	memberRev := map[string]int64{}
	seq := 0
	for i, made := 0, 0; made < n; i++ {
		at := int64(i) * 1000 // the linearization point
		var ready []int
		for p := range procs {
			if free[p] < at-100 {
				ready = append(ready, p)
			}
		}
		if len(ready) == 0 {
			continue
		}
		made++
		p := ready[r.IntN(len(ready))]
		invoke := max(free[p]+1, at-int64(r.IntN(5000)))
		done := at + 1 + int64(r.IntN(5000))
		free[p] = done
		member := fmt.Sprintf("n%d", p%3+1)
		inv := history.Event{Type: history.Invoke, Process: pid[p], Time: invoke}
		out := history.Event{Type: history.OK, Process: pid[p], Time: done, Member: member}
		k := r.IntN(nkeys)
		seq++
		value := fmt.Sprintf("v%d", seq)
		isInfo := false
		applies := true
		x := r.IntN(100)
		if x >= 40 && r.Float64() < info*100/60 {
			isInfo = true
			applies = r.IntN(10) < 7
		}
		switch {
		case x < 25:
			inv.F, inv.Key = KVGet, name(k)
			if r.IntN(5) == 0 {
				// Serializable: the member's state some revisions ago.
				inv.Serializable, out.Serializable = true, true
				at := max(memberRev[member], rev-int64(r.IntN(4)), 1)
				memberRev[member] = at
				out.Revision, out.KVs = at, kvOf(states[at-1], k)
			} else {
				out.Revision, out.KVs = rev, kvOf(state, k)
			}
			out.Count = int64(len(out.KVs))
		case x < 40:
			inv.F, inv.Key, inv.RangeEnd = KVRange, "/kv/", "/kv0"
			inv.Limit = int64(r.IntN(3))
			inv.KeysOnly = r.IntN(4) == 0
			out.Revision = rev
			for j := range nkeys {
				kvs := kvOf(state, j)
				if len(kvs) == 0 {
					continue
				}
				out.Count++
				if inv.Limit == 0 || int64(len(out.KVs)) < inv.Limit {
					if inv.KeysOnly {
						kvs[0].Value = ""
					}
					out.KVs = append(out.KVs, kvs...)
				}
			}
			out.More = inv.Limit > 0 && out.Count > inv.Limit
		case x < 65:
			inv.F = KVPut
			if watch > 0 && r.Float64() < watch {
				inv.F, k = WatchPut, nkeys+r.IntN(watchKeys)
			}
			inv.Key, inv.Value = name(k), value
			inv.PrevKV = r.IntN(3) == 0
			if applies {
				if inv.PrevKV && state[k].val != "" {
					out.Prev = &kvOf(state, k)[0]
				}
				rev++
				put(k, value)
				commit()
			}
			out.Revision = rev
		case x < 75:
			inv.F = KVDelete
			if watch > 0 && r.Float64() < watch {
				inv.F, k = WatchDelete, nkeys+r.IntN(watchKeys)
			}
			inv.Key = name(k)
			if applies && state[k].val != "" {
				out.Deleted = 1
				rev++
				del(k)
				commit()
			}
			out.Revision = rev
		default:
			inv.F = KVTxn
			c := history.Compare{Key: name(k), Op: "="}
			// Compare against the state some revisions ago: usually true.
			old := states[max(0, len(states)-1-r.IntN(3))][k]
			switch r.IntN(4) {
			case 0:
				c.Target, c.Value = "value", old.val
			case 1:
				c.Target, c.Number = "version", old.ver
			case 2:
				c.Target, c.Number = "create_revision", old.create
			default:
				c.Target, c.Number = "mod_revision", old.mod
			}
			k2 := (k + 1 + r.IntN(nkeys-1)) % nkeys
			inv.Txn = &history.Txn{Compares: []history.Compare{c},
				Then: []history.TxnOp{{F: "put", Key: name(k), Value: value}, {F: "delete", Key: name(k2)}},
				Else: []history.TxnOp{{F: "get", Key: name(k)}}}
			cur := state[k]
			var holds bool
			switch c.Target {
			case "value":
				holds = cur.val != "" && cur.val == c.Value
			case "version":
				holds = cur.ver == c.Number
			case "create_revision":
				holds = cur.create == c.Number
			default:
				holds = cur.mod == c.Number
			}
			if applies {
				out.Succeeded = holds
				if holds {
					deleted := int64(0)
					if state[k2].val != "" {
						deleted = 1
					}
					rev++
					put(k, value)
					del(k2)
					commit()
					out.Txn = &history.Txn{Responses: []history.TxnOp{{F: "put", Key: name(k)}, {F: "delete", Key: name(k2), Deleted: deleted}}}
				} else {
					out.Txn = &history.Txn{Responses: []history.TxnOp{{F: "get", Key: name(k), KVs: kvOf(state, k)}}}
				}
			}
			out.Revision = rev
		}
		out.F, out.Key = inv.F, inv.Key
		if isInfo {
			out = history.Event{Type: history.Info, Process: pid[p], F: inv.F, Time: done, Error: "context deadline exceeded"}
			pid[p] = nextPid
			nextPid++
		}
		events = append(events, inv, out)
	}
	slices.SortStableFunc(events, func(a, b history.Event) int { return cmp.Compare(a.Time, b.Time) })
	ops, err := history.Ops(events)
	if err != nil {
		panic(err)
	}
	log.Seen = []RevSpan{{From: 2, To: rev}}
	return ops, log
}
