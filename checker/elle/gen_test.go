package elle

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// genAppend simulates n list-append transactions against a store that
// applies each atomically at its commit instant, in commit order, so the
// history is strict serializable. Transactions overlap (each is invoked up
// to spread commits before its commit and completes up to spread after),
// touch 1–4 of the keys in use, and each key retires after perKey
// appends. A share info of them end with unknown outcome (half of those
// took effect) and fail of them failed. Reads share the store's lists,
// which only ever grow, so a large history stays small in memory.
func genAppend(n int, info, fail float64, seed uint64) []Txn {
	const keys, perKey, spread = 10, 100, 40
	r := rand.New(rand.NewPCG(seed, 1))
	lists := map[string][]int64{}
	slot := make([]int, keys)     // generation of each key slot
	appended := make([]int, keys) // appends to the slot's current key
	txns := make([]Txn, n)
	var next int64
	for i := range txns {
		commit := int64(i) * 1e6 // a commit a millisecond
		t := Txn{ID: i + 1, Process: i % 64, Status: OK,
			Invoke: commit - int64(r.IntN(spread*1e6)), Complete: commit + int64(r.IntN(spread*1e6))}
		switch x := r.Float64(); {
		case x < info:
			t.Status = Info
		case x < info+fail:
			t.Status = Fail
		}
		applies := t.Status == OK || t.Status == Info && r.IntN(2) == 0
		for range 1 + r.IntN(4) {
			s := r.IntN(keys)
			key := fmt.Sprintf("k%d.%d", s, slot[s])
			if r.IntN(2) == 0 {
				t.Mops = append(t.Mops, Mop{Kind: Read, Key: key, List: lists[key][:len(lists[key]):len(lists[key])]})
				continue
			}
			next++
			e := next
			t.Mops = append(t.Mops, Mop{Kind: Append, Key: key, Value: e})
			if applies {
				lists[key] = append(lists[key], e)
			}
			if appended[s]++; appended[s] == perKey {
				slot[s]++
				appended[s] = 0
			}
		}
		txns[i] = t
	}
	return txns
}

// TestGeneratedValid: a simulated strict serializable history with
// unknown outcomes is valid; the same history with one read made stale is
// not, and the anomaly names that read.
func TestGeneratedValid(t *testing.T) {
	txns := genAppend(20000, 0.1, 0.05, 1)
	r, err := Check(txns, Options{Workload: ListAppend})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Valid {
		t.Fatalf("simulated strict serializable history: %v %s", r.Counts, r.Unknown)
	}
	// Make one committed read miss the later half of what it saw: those
	// appends committed long before it began.
	for i := len(txns) / 2; i < len(txns); i++ {
		if m := txns[i].Mops[0]; txns[i].Status == OK && m.Kind == Read && len(m.List) > 20 {
			txns[i].Mops[0].List = m.List[:len(m.List)/2]
			r, err = Check(txns, Options{Workload: ListAppend})
			if err != nil {
				t.Fatal(err)
			}
			if r.Valid || len(r.Anomalies) == 0 {
				t.Fatalf("stale read by T%d not found", txns[i].ID)
			}
			t.Logf("%v: %s", r.Counts, r.Anomalies[0].Line(txns))
			return
		}
	}
	t.Fatal("no read to make stale")
}

// benchmarkCheck checks a simulated strict serializable history of n
// transactions, a share info of them of unknown outcome and 5% failed,
// for strict serializability (real-time edges included). With stale, that
// share of committed reads miss the later half of what they saw, so the
// graph is full of cycles to find and explain.
func benchmarkCheck(b *testing.B, n int, info, stale float64) {
	txns := genAppend(n, info, 0.05, 1)
	if stale > 0 {
		r := rand.New(rand.NewPCG(2, 2))
		for i := range txns {
			for j, m := range txns[i].Mops {
				if txns[i].Status == OK && m.Kind == Read && len(m.List) > 4 && r.Float64() < stale {
					txns[i].Mops[j].List = m.List[:len(m.List)/2]
				}
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		r, err := Check(txns, Options{Workload: ListAppend})
		if err != nil || r.Valid != (stale == 0) {
			b.Fatalf("%v %v %s", err, r.Counts, r.Unknown)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "txns/s")
	}
}

func BenchmarkCheck100k(b *testing.B) { benchmarkCheck(b, 100_000, 0.1, 0) }
func BenchmarkCheck1M(b *testing.B)   { benchmarkCheck(b, 1_000_000, 0.1, 0) }

// BenchmarkCheck100kHalfUnknown: half the transactions of unknown outcome
// cost nothing in search.
func BenchmarkCheck100kHalfUnknown(b *testing.B) { benchmarkCheck(b, 100_000, 0.5, 0) }

// BenchmarkCheck100kBroken: 1% of the reads stale, so cycles everywhere.
func BenchmarkCheck100kBroken(b *testing.B) { benchmarkCheck(b, 100_000, 0.1, 0.01) }

// BenchmarkCheck1MBroken: a million, 1% of the reads stale.
func BenchmarkCheck1MBroken(b *testing.B) { benchmarkCheck(b, 1_000_000, 0.1, 0.01) }
