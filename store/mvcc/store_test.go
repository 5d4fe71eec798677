package mvcc

import (
	"errors"
	"testing"
)

func put(s *Store, k, v string) int64 {
	t := s.Write()
	t.Put([]byte(k), []byte(v), 0)
	t.End()
	return s.Rev()
}

func del(s *Store, k string) int64 {
	t := s.Write()
	t.DeleteRange([]byte(k), nil)
	t.End()
	return s.Rev()
}

// roundTrip is s as a member restored from a snapshot of it holds it.
func roundTrip(t *testing.T, s *Store) *Store {
	t.Helper()
	data, err := s.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func get(t *testing.T, s *Store, k string, rev int64) (string, int64, int64, int64, bool) {
	t.Helper()
	res, err := s.Range([]byte(k), nil, RangeOptions{Rev: rev})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KVs) == 0 {
		return "", 0, 0, 0, false
	}
	kv := res.KVs[0]
	return string(kv.Value), kv.CreateRevision, kv.ModRevision, kv.Version, true
}

func TestRevisionsLikeEtcd(t *testing.T) {
	s := New()
	if s.Rev() != 1 {
		t.Fatalf("new store at %d, want 1", s.Rev())
	}
	steps := []struct {
		op                   func() int64
		wantRev              int64
		key, val             string
		create, mod, version int64
		exists               bool
	}{
		{func() int64 { return put(s, "a", "1") }, 2, "a", "1", 2, 2, 1, true},
		{func() int64 { return put(s, "a", "2") }, 3, "a", "2", 2, 3, 2, true},
		{func() int64 { return del(s, "a") }, 4, "a", "", 0, 0, 0, false},
		{func() int64 { return del(s, "a") }, 4, "a", "", 0, 0, 0, false}, // deleting nothing keeps the revision
		{func() int64 { return put(s, "a", "3") }, 5, "a", "3", 5, 5, 1, true},
	}
	for i, st := range steps {
		if rev := st.op(); rev != st.wantRev {
			t.Fatalf("step %d: revision %d, want %d", i, rev, st.wantRev)
		}
		v, c, m, ver, ok := get(t, s, st.key, 0)
		if ok != st.exists || v != st.val || c != st.create || m != st.mod || ver != st.version {
			t.Errorf("step %d: got %q c=%d m=%d v=%d exists=%v", i, v, c, m, ver, ok)
		}
	}
	if v, _, _, _, _ := get(t, s, "a", 2); v != "1" {
		t.Errorf("a@2 = %q", v)
	}
	if _, _, _, _, ok := get(t, s, "a", 4); ok {
		t.Errorf("a@4 exists after its deletion")
	}
	if _, err := s.Range([]byte("a"), nil, RangeOptions{Rev: 9}); !errors.Is(err, ErrFutureRev) {
		t.Errorf("future read: %v", err)
	}
}

func TestTxnSharesOneRevision(t *testing.T) {
	s := New()
	tx := s.Write()
	tx.Put([]byte("a"), []byte("1"), 0)
	tx.Put([]byte("b"), []byte("1"), 0)
	if got := tx.Get([]byte("a")); got == nil || string(got.Value) != "1" {
		t.Errorf("txn does not read its own write")
	}
	evs := tx.End()
	if len(evs) != 2 || s.Rev() != 2 || evs[0].Kv.ModRevision != 2 || evs[1].Kv.ModRevision != 2 {
		t.Errorf("events %v, rev %d", evs, s.Rev())
	}
}

func TestRangeAndCompact(t *testing.T) {
	s := New()
	for _, k := range []string{"a", "b", "c", "d"} {
		put(s, k, k)
	}
	res, _ := s.Range([]byte("b"), []byte("d"), RangeOptions{})
	if res.Count != 2 {
		t.Errorf("[b,d) count = %d", res.Count)
	}
	res, _ = s.Range([]byte("b"), []byte{0}, RangeOptions{Limit: 1})
	if res.Count != 3 || len(res.KVs) != 1 {
		t.Errorf("[b,∞) limit 1 = %d kvs, count %d", len(res.KVs), res.Count)
	}
	put(s, "a", "a2") // rev 6
	del(s, "b")       // rev 7
	if err := s.Compact(6); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Range([]byte("a"), nil, RangeOptions{Rev: 5}); !errors.Is(err, ErrCompacted) {
		t.Errorf("read below compaction: %v", err)
	}
	if v, _, _, _, _ := get(t, s, "a", 6); v != "a2" {
		t.Errorf("a@6 = %q", v)
	}
	if v, _, _, _, _ := get(t, s, "c", 6); v != "c" {
		t.Errorf("c@6 = %q after compaction", v)
	}
	if err := s.Compact(6); !errors.Is(err, ErrCompacted) {
		t.Errorf("compacting again: %v", err)
	}
	if _, err := s.EventsSince(5); !errors.Is(err, ErrCompacted) {
		t.Errorf("events below compaction: %v", err)
	}
	evs, err := s.EventsSince(7)
	if err != nil || len(evs) != 1 {
		t.Errorf("events since 7 = %v, %v", evs, err)
	}

	s2 := roundTrip(t, s)
	if s2.Rev() != s.Rev() || s2.CompactRev() != 6 || s2.KeyCount() != s.KeyCount() {
		t.Errorf("decoded store rev %d compact %d keys %d", s2.Rev(), s2.CompactRev(), s2.KeyCount())
	}
	if v, _, _, _, _ := get(t, s2, "a", 6); v != "a2" {
		t.Errorf("decoded a@6 = %q", v)
	}
	evs2, _ := s2.EventsSince(7)
	if len(evs2) != 1 {
		t.Errorf("decoded events since 7 = %v", evs2)
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	s := New()
	put(s, "a", "1")
	del(s, "a")
	data, _ := s.Encode(nil)
	f.Add(data)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		Decode(data) // must not panic or hang
	})
}
