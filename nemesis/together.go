package nemesis

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/faultline/faultline/compose"
)

// Together is several faults in one window: started in order, healed in
// the reverse order (so a partition named before a pause is installed
// while the member still runs, and removed after it thaws). On the command
// line: a+b.
type Together struct {
	Faults  []Fault
	started int
}

// parts returns the faults f is made of: those of a Together, else f.
func parts(f Fault) []Fault {
	if t, ok := f.(*Together); ok {
		return t.Faults
	}
	return []Fault{f}
}

// anyPart says whether some part of one of fs is a T that holds.
func anyPart[T any](fs []Fault, holds func(T) bool) bool {
	for _, f := range fs {
		for _, p := range parts(f) {
			if t, ok := p.(T); ok && holds(t) {
				return true
			}
		}
	}
	return false
}

func (t *Together) Name() string {
	var ns []string
	for _, f := range t.Faults {
		ns = append(ns, f.Name())
	}
	return strings.Join(ns, "+")
}

func (t *Together) minMembers() int {
	n := 1
	for _, f := range t.Faults {
		if s, ok := f.(sizer); ok {
			n = max(n, s.minMembers())
		}
	}
	return n
}

func (t *Together) Start(ctx context.Context, c Cluster, r *rand.Rand) ([]*compose.Member, error) {
	var hit []*compose.Member
	t.started = 0
	for _, f := range t.Faults {
		// Counted before Start: a fault that fails half way is healed too.
		t.started++
		ms, err := f.Start(ctx, c, r)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if !slices.Contains(hit, m) {
				hit = append(hit, m)
			}
		}
	}
	return hit, nil
}

func (t *Together) Heal(ctx context.Context, c Cluster) error {
	var errs []error
	for i := t.started - 1; i >= 0; i-- {
		errs = append(errs, t.Faults[i].Heal(ctx, c))
	}
	t.started = 0
	return errors.Join(errs...)
}
