package workloads

import (
	"slices"
	"testing"
)

// TestWorkerRand: a worker's choices follow from the seed, its role and
// its index, and change with any of them.
func TestWorkerRand(t *testing.T) {
	draws := func(seed int64, role string, i int) []int {
		r := Options{Seed: seed}.rand(role, i)
		var out []int
		for range 20 {
			out = append(out, r.IntN(1000))
		}
		return out
	}
	a := draws(42, "kv", 3)
	if b := draws(42, "kv", 3); !slices.Equal(a, b) {
		t.Fatalf("the same seed, role and worker drew %v, then %v", a, b)
	}
	for _, other := range [][]int{draws(43, "kv", 3), draws(42, "register", 3), draws(42, "kv", 4)} {
		if slices.Equal(a, other) {
			t.Errorf("another seed, role or worker drew the same %v", a)
		}
	}
}
