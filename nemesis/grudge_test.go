package nemesis

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func memberNames(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("n%d", i+1))
	}
	return out
}

// checkSymmetric: nobody drops itself, and every cut goes both ways.
func checkSymmetric(t *testing.T, g Grudge) {
	t.Helper()
	for a, bs := range g {
		for _, b := range bs {
			if a == b {
				t.Errorf("%s drops its own packets", a)
			}
			if !slices.Contains(g[b], a) {
				t.Errorf("%s drops %s but not the other way round", a, b)
			}
		}
	}
}

func TestRing(t *testing.T) {
	for n := 4; n <= 9; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			names := memberNames(n)
			g, err := ring(names)
			if err != nil {
				t.Fatal(err)
			}
			checkSymmetric(t, g)
			seen := map[string]string{}
			for _, m := range names {
				sees := g.Sees(m, names)
				if len(sees) < majority(n) {
					t.Errorf("%s sees %v: not a majority of %d", m, sees, n)
				}
				if len(sees) == n {
					t.Errorf("%s sees every member: not a partition", m)
				}
				key := strings.Join(sees, ",")
				if other, dup := seen[key]; dup {
					t.Errorf("%s and %s see the same majority %s", m, other, key)
				}
				seen[key] = m
			}
		})
	}
	for _, n := range []int{1, 2, 3} {
		if _, err := ring(memberNames(n)); err == nil {
			t.Errorf("ring of %d members accepted", n)
		}
	}
}

func TestHalves(t *testing.T) {
	for n := 3; n <= 9; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			names := memberNames(n)
			g, minority, err := halves(names)
			if err != nil {
				t.Fatal(err)
			}
			checkSymmetric(t, g)
			if len(minority) >= majority(n) || len(minority) == 0 {
				t.Fatalf("minority %v of %d members", minority, n)
			}
			for _, m := range names {
				sees := g.Sees(m, names)
				if slices.Contains(minority, m) {
					if !slices.Equal(sees, minority) {
						t.Errorf("minority member %s sees %v, want %v", m, sees, minority)
					}
				} else if len(sees) != n-len(minority) || len(sees) < majority(n) {
					t.Errorf("majority member %s sees %v", m, sees)
				}
			}
		})
	}
	if _, _, err := halves(memberNames(2)); err == nil {
		t.Error("halves of 2 members accepted")
	}
}

func TestBridge(t *testing.T) {
	for n := 3; n <= 9; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			names := memberNames(n)
			g, b, err := bridge(names)
			if err != nil {
				t.Fatal(err)
			}
			checkSymmetric(t, g)
			if sees := g.Sees(b, names); len(sees) != n {
				t.Errorf("bridge %s sees %v, want everyone", b, sees)
			}
			i := slices.Index(names, b)
			left, right := names[:i], names[i+1:]
			if len(left) == 0 || len(right) == 0 {
				t.Fatalf("bridge %s has an empty side: %v | %v", b, left, right)
			}
			if d := len(right) - len(left); d < 0 || d > 1 {
				t.Errorf("sides %v and %v are not halves", left, right)
			}
			for _, side := range [][]string{left, right} {
				want := slices.Concat(side, []string{b})
				slices.Sort(want)
				for _, m := range side {
					sees := slices.Clone(g.Sees(m, names))
					slices.Sort(sees)
					if !slices.Equal(sees, want) {
						t.Errorf("%s sees %v, want its half and the bridge %v", m, sees, want)
					}
				}
			}
			if n%2 == 1 && len(left)+1 < majority(n) {
				t.Errorf("with %d members each half and the bridge should be a majority", n)
			}
		})
	}
	if _, _, err := bridge(memberNames(2)); err == nil {
		t.Error("bridge of 2 members accepted")
	}
}

func TestIsolate(t *testing.T) {
	for n := 2; n <= 9; n++ {
		names := memberNames(n)
		one := names[n-1]
		g, err := isolate(names, one)
		if err != nil {
			t.Fatal(err)
		}
		checkSymmetric(t, g)
		if sees := g.Sees(one, names); !slices.Equal(sees, []string{one}) {
			t.Errorf("n=%d: isolated %s sees %v", n, one, sees)
		}
		for _, m := range names[:n-1] {
			if sees := g.Sees(m, names); !slices.Equal(sees, names[:n-1]) {
				t.Errorf("n=%d: %s sees %v, want the rest %v", n, m, sees, names[:n-1])
			}
		}
	}
	if _, err := isolate(memberNames(3), "n9"); err == nil {
		t.Error("isolating a non-member accepted")
	}
	if _, err := isolate(memberNames(1), "n1"); err == nil {
		t.Error("isolating the only member accepted")
	}
}
