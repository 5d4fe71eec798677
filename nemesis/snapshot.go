package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/faultline/faultline/compose"
)

// snapshotCut cuts a member off from its peers until the leader has
// applied more entries than its log keeps for a follower (the cluster's
// SnapshotLag), then lets it back: the leader no longer has what the
// member lacks and must send it a snapshot, which the member restores
// while its clients and watchers go on. The window may end first; heal
// lets it back then.
type snapshotCut struct {
	changedLinks
}

// run cuts m off and lets it back once far enough behind, or when ctx
// ends; say is told what happened, as it happens.
func (s *snapshotCut) run(ctx context.Context, c Cluster, m *compose.Member, say func(string)) {
	lag := c.SnapshotLag()
	if lag == 0 {
		say("not cut off: the target's snapshot settings are not known")
		return
	}
	ms := c.List()
	g, err := isolate(compose.Names(ms), m.Name)
	if err == nil {
		s.touched, err = cutLinks(ctx, c, ms, g)
	}
	if err != nil {
		say("could not cut it off: " + err.Error())
		return
	}
	start := time.Now()
	var ahead uint64
	say(fmt.Sprintf("cut off until the leader is %d entries ahead (--snapshot-count plus --snapshot-catchup-entries)", lag))
	for ahead <= lag {
		if !sleep(ctx, 200*time.Millisecond) {
			say(fmt.Sprintf("cut off for the whole window: the leader got %d of the %d entries ahead that make it send a snapshot (smaller --snapshot-count and --snapshot-catchup-entries get there sooner)", ahead, lag))
			return
		}
		if n, err := leaderAhead(ctx, c, m); err == nil {
			ahead = n
		}
	}
	what := fmt.Sprintf("cut off for %.1fs, until the leader was %d entries ahead, then let back to be sent a snapshot", time.Since(start).Seconds(), ahead)
	if err := s.Heal(ctx, c); err != nil {
		what += " (letting it back: " + err.Error() + ")"
	}
	say(what)
}

// leaderAhead is how many more entries the leader has applied than m.
func leaderAhead(ctx context.Context, c Cluster, m *compose.Member) (uint64, error) {
	l, err := c.Leader(ctx)
	if err != nil {
		return 0, err
	}
	ls, err := c.Status(ctx, l)
	if err != nil {
		return 0, err
	}
	ms, err := c.Status(ctx, m)
	if err != nil {
		return 0, err
	}
	if ls.AppliedIndex < ms.AppliedIndex {
		return 0, nil
	}
	return ls.AppliedIndex - ms.AppliedIndex, nil
}

// SnapshotCatchUp is blackhole-until-snapshot: one random follower is cut
// off from its peers until the leader must send it a snapshot, then let
// back (snapshotCut). The path it opens is a lagging member restoring a
// snapshot under live clients and watchers, where stores have lost and
// replayed watch events.
type SnapshotCatchUp struct {
	cut    snapshotCut
	member *compose.Member
	bg     background
	mu     sync.Mutex
	said   string
}

func (*SnapshotCatchUp) Name() string    { return "blackhole-until-snapshot" }
func (*SnapshotCatchUp) minMembers() int { return 2 }

// Effects says how far behind the member fell and whether it was let back
// for a snapshot.
func (s *SnapshotCatchUp) Effects() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.member == nil || s.said == "" {
		return nil
	}
	return map[string]string{s.member.Name: s.said}
}

func (s *SnapshotCatchUp) say(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.said = what
}

func (s *SnapshotCatchUp) Start(ctx context.Context, c Cluster, r *rand.Rand) ([]*compose.Member, error) {
	m, err := aim(ctx, c, roleFollower, r)
	if err != nil {
		return nil, err
	}
	s.member, s.said = m, ""
	s.bg.start(ctx, func(ctx context.Context) { s.cut.run(ctx, c, m, s.say) })
	return []*compose.Member{m}, nil
}

func (s *SnapshotCatchUp) Heal(ctx context.Context, c Cluster) error {
	s.bg.stop()
	return s.cut.Heal(ctx, c)
}

// background is what a fault goes on doing through its window, in a
// goroutine of its own: started by Start, ended by Heal.
type background struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs do until stop; the window's end, not Start's deadline, ends
// it.
func (b *background) start(ctx context.Context, do func(context.Context)) {
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		do(ctx)
	}()
}

// stop ends what start began and waits for it; it does nothing if nothing
// runs.
func (b *background) stop() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	<-b.done
	b.cancel = nil
}
