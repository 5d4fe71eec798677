package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/faultline/faultline/compose"
)

// pick chooses which members a member fault (kill, pause) hits.
type pick int

const (
	pickRandom pick = iota
	pickLeader
	pickMinority
	pickMajority
	pickAll
)

func (p pick) String() string {
	return [...]string{"random", "leader", "minority", "majority", "all"}[p]
}

// minMembers: a minority of fewer than 3 members would be nobody.
func (p pick) minMembers() int {
	if p == pickMinority {
		return 3
	}
	return 1
}

// choose returns the members to hit: the leader as the cluster agrees on
// it, or a random subset of the size the pick asks for.
func (p pick) choose(ctx context.Context, c Cluster, r *rand.Rand) ([]*compose.Member, error) {
	ms := c.List()
	if len(ms) == 0 {
		return nil, errors.New("the cluster has no members")
	}
	if p == pickLeader {
		l, err := findLeader(ctx, c, 5*time.Second)
		if err != nil {
			return nil, err
		}
		return []*compose.Member{l}, nil
	}
	k := map[pick]int{
		pickRandom:   1,
		pickMinority: (len(ms) - 1) / 2,
		pickMajority: majority(len(ms)),
		pickAll:      len(ms),
	}[p]
	if k < 1 {
		return nil, fmt.Errorf("a %s of %d members is nobody", p, len(ms))
	}
	return shuffled(r, ms)[:k], nil
}

func shuffled[T any](r *rand.Rand, xs []T) []T {
	out := append([]T(nil), xs...)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// memberFault does something to each member its pick chooses, and undoes
// it on heal for the members it was done to. What do says it did, if
// anything, is the fault's effect on that member.
type memberFault struct {
	verb string
	pick pick
	// disk: the fault needs the filesystem layer.
	disk    bool
	do      func(Cluster, context.Context, *compose.Member) (string, error)
	undo    func(Cluster, context.Context, *compose.Member) error
	hit     []*compose.Member
	effects map[string]string
}

// silent is a do that has nothing to say of what it did.
func silent(do func(Cluster, context.Context, *compose.Member) error) func(Cluster, context.Context, *compose.Member) (string, error) {
	return func(c Cluster, ctx context.Context, m *compose.Member) (string, error) { return "", do(c, ctx, m) }
}

// kill SIGKILLs the members and, on heal, restarts them with their data.
func kill(p pick) Fault {
	return &memberFault{verb: "kill", pick: p, do: silent(Cluster.Kill), undo: Cluster.Start}
}

// pause freezes the members (docker pause: the cgroup freezer stops every
// process, as SIGSTOP would) and thaws them on heal. A paused leader keeps
// its sockets open and wakes up believing it still leads.
func pause(p pick) Fault {
	return &memberFault{verb: "pause", pick: p, do: silent(Cluster.Pause), undo: Cluster.Unpause}
}

func (f *memberFault) Name() string    { return f.verb + "-" + f.pick.String() }
func (f *memberFault) minMembers() int { return f.pick.minMembers() }

func (f *memberFault) Start(ctx context.Context, c Cluster, r *rand.Rand) ([]*compose.Member, error) {
	ms, err := f.pick.choose(ctx, c, r)
	if err != nil {
		return nil, err
	}
	f.effects = nil
	for _, m := range ms {
		said, err := f.do(c, ctx, m)
		if err != nil {
			return nil, err
		}
		f.hit = append(f.hit, m)
		if said != "" {
			if f.effects == nil {
				f.effects = map[string]string{}
			}
			f.effects[m.Name] = said
		}
	}
	return ms, nil
}

func (f *memberFault) Effects() map[string]string { return f.effects }
func (f *memberFault) usesDisk() bool             { return f.disk }

func (f *memberFault) Heal(ctx context.Context, c Cluster) error {
	var errs []error
	for _, m := range f.hit {
		errs = append(errs, f.undo(c, ctx, m))
	}
	f.hit = nil
	return errors.Join(errs...)
}

// findLeader asks until one leader is agreed on: right after a fault the
// cluster may still be electing.
func findLeader(ctx context.Context, c Cluster, limit time.Duration) (*compose.Member, error) {
	deadline := time.Now().Add(limit)
	for {
		m, err := c.Leader(ctx)
		if err == nil {
			return m, nil
		}
		if time.Now().After(deadline) || !sleep(ctx, 100*time.Millisecond) {
			return nil, fmt.Errorf("finding the leader: %w", err)
		}
	}
}
