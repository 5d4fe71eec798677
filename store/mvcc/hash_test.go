package mvcc

import (
	"errors"
	"testing"
)

func hash(t *testing.T, s *Store, rev int64) uint32 {
	t.Helper()
	h, err := s.Hash(rev)
	if err != nil {
		t.Fatalf("hash at %d: %v", rev, err)
	}
	return h
}

// Two stores that end in the same state, key for key down to revisions and
// versions, but got there through different values, must hash differently.
func TestHashSeesHistory(t *testing.T) {
	a, b := New(), New()
	put(a, "k", "1")
	put(a, "k", "2")
	put(b, "k", "2")
	put(b, "k", "2")
	ra, _ := a.Range([]byte("k"), nil, RangeOptions{})
	rb, _ := b.Range([]byte("k"), nil, RangeOptions{})
	if ra.KVs[0].String() != rb.KVs[0].String() {
		t.Fatalf("the stores should end alike: %v and %v", ra.KVs[0], rb.KVs[0])
	}
	if hash(t, a, 0) == hash(t, b, 0) {
		t.Error("stores with different histories hash alike")
	}
}

// A member hashes at a revision others have reached; what it wrote since,
// a snapshot's round trip, and a compaction up to that revision (which a
// member may have got further with than another) must not change that hash.
func TestHashIsStable(t *testing.T) {
	s := New()
	put(s, "a", "1") // 2
	put(s, "b", "1") // 3
	del(s, "a")      // 4
	put(s, "b", "2") // 5
	put(s, "c", "1") // 6
	put(s, "b", "3") // 7
	uncompacted := hash(t, s, 7)
	if err := s.Compact(5); err != nil {
		t.Fatal(err)
	}
	before := hash(t, s, 7)
	if before == uncompacted {
		t.Error("a compaction left the hash as it was")
	}
	put(s, "d", "1")
	del(s, "b")
	if hash(t, s, 7) != before {
		t.Error("writes after the hash revision changed the hash")
	}
	restored := roundTrip(t, s)
	if hash(t, restored, 0) != hash(t, s, 0) || hash(t, restored, 7) != before {
		t.Error("a store restored from a snapshot hashes differently")
	}
	if err := s.Compact(7); err != nil {
		t.Fatal(err)
	}
	if hash(t, s, 7) != before {
		t.Error("compacting up to the hash revision changed the hash")
	}

	if _, err := s.Hash(s.Rev() + 1); !errors.Is(err, ErrFutureRev) {
		t.Errorf("hash at a future revision: %v", err)
	}
	if _, err := s.Hash(6); !errors.Is(err, ErrCompacted) {
		t.Errorf("hash below the compaction: %v", err)
	}
}
