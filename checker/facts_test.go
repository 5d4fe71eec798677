package checker

import "testing"

func TestRevisionsCover(t *testing.T) {
	rs := mergeRevisions([]revRange{{9, 9}, {2, 4}, {5, 5}, {7, 8}, {3, 3}, {12, 20}, {15, 16}})
	for _, c := range []struct {
		lo, hi int64
		want   bool
	}{
		{2, 5, true},   // adjacent ranges merge
		{3, 9, false},  // 6 is missing
		{7, 9, true},   // 7..8 and 9 merge
		{6, 6, false},  // a hole
		{12, 20, true}, // a range inside another is absorbed
		{11, 12, false},
		{20, 21, false},
		{1, 1, false},
		{8, 7, true}, // nothing between two neighbouring revisions
	} {
		if got := rs.covers(c.lo, c.hi); got != c.want {
			t.Errorf("%v covers %d..%d = %v, want %v", rs, c.lo, c.hi, got, c.want)
		}
	}
}
