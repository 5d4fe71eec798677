package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/faultline/faultline/compose"
	clientv3 "go.etcd.io/etcd/client/v3"
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
	// The workload's writes may come slowly while one member is cut off
	// (its requests to that member wait out their timeout), so the harness
	// adds entries of its own that change no key: leases granted and
	// revoked at once.
	cli, err := c.Client(without(ms, m)...)
	if err != nil {
		cli = nil
	} else {
		defer cli.Close()
	}
	start := time.Now()
	var ahead, added uint64
	filler := func() string {
		if added == 0 {
			return ""
		}
		return fmt.Sprintf("; the harness added %d entries (lease grants and revokes) besides the workload's", added)
	}
	target := lag + sentAhead
	say(fmt.Sprintf("cut off until the leader is %d entries ahead (--snapshot-count plus --snapshot-catchup-entries, plus %d the leader may have sent before it stopped)", target, sentAhead))
	for ahead <= target {
		if !sleep(ctx, 200*time.Millisecond) {
			say(fmt.Sprintf("cut off for the whole window: the leader got %d of the %d entries ahead that make it send a snapshot (smaller --snapshot-count and --snapshot-catchup-entries get there sooner)%s", ahead, target, filler()))
			return
		}
		if n, err := leaderAhead(ctx, c, m); err == nil {
			ahead = n
		}
		if ahead <= target && cli != nil {
			added += addEntries(ctx, cli, min(target+1-ahead, 200))
		}
	}
	what := fmt.Sprintf("cut off for %.1fs, until the leader was %d entries ahead, then let back to be sent a snapshot%s", time.Since(start).Seconds(), ahead, filler())
	if err := s.Heal(ctx, c); err != nil {
		what += " (letting it back: " + err.Error() + ")"
	}
	say(what)
}

// sentAhead is how many entries past the snapshot lag the member must
// fall behind. A leader goes on sending to a member it cannot hear from
// until its window of unacknowledged appends is full (etcd: 512 messages,
// an entry or a few each), and the network holds what it sent: the peers'
// TCP connections retransmit what the member's firewall dropped once it is
// let back. What the window carried then reaches the member from the log
// after all; only past it must the leader send a snapshot.
const sentAhead = 1024

// addEntries appends about n entries to the raft log by granting and
// revoking leases, which hold no key, so no revision moves and no
// workload sees them; it returns how many it added.
func addEntries(ctx context.Context, cli *clientv3.Client, n uint64) uint64 {
	var added uint64
	for added < n && ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		l, err := cli.Grant(rctx, 60)
		if err == nil {
			added++
			if _, err = cli.Revoke(rctx, l.ID); err == nil {
				added++
			}
		}
		cancel()
		if err != nil {
			break
		}
	}
	return added
}

// leaderAhead is how many more entries the leader has applied than m. The
// leader is sought among the others only: m, cut off, may no longer agree
// on who leads.
func leaderAhead(ctx context.Context, c Cluster, m *compose.Member) (uint64, error) {
	ms, err := c.Status(ctx, m)
	if err != nil {
		return 0, err
	}
	for _, o := range without(c.List(), m) {
		ls, err := c.Status(ctx, o)
		if err != nil || !ls.IsLeader() {
			continue
		}
		if ls.AppliedIndex < ms.AppliedIndex {
			return 0, nil
		}
		return ls.AppliedIndex - ms.AppliedIndex, nil
	}
	return 0, errors.New("no leader among the other members")
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
