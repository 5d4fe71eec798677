package workloads

import (
	"slices"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		n, k int
		want []int
	}{
		{10, 1, []int{10}},
		{10, 2, []int{5, 5}},
		{10, 3, []int{4, 3, 3}},
		{2, 3, []int{1, 1, 1}}, // fewer workers than workloads: they share
	} {
		if got := Split(tc.n, tc.k); !slices.Equal(got, tc.want) {
			t.Errorf("Split(%d, %d) = %v, want %v", tc.n, tc.k, got, tc.want)
		}
	}
}

func TestNewMix(t *testing.T) {
	w, err := New("register,kv", Options{Keys: 4, Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := w.(*Mix)
	if !ok || len(m.Parts()) != 2 {
		t.Fatalf("got %T", w)
	}
	if _, ok := m.Parts()[0].(*Register); !ok {
		t.Errorf("first part is %T, want *Register", m.Parts()[0])
	}
	if _, ok := m.Parts()[1].(*KV); !ok {
		t.Errorf("second part is %T, want *KV", m.Parts()[1])
	}
	for spec, want := range map[string]string{
		"kv,kv":   "named twice",
		"kv,nope": "unknown workload \"nope\"",
	} {
		if _, err := New(spec, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%q): %v, want an error containing %q", spec, err, want)
		}
	}
}
