package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/compose"
)

// MemberReplace removes a random member from the cluster through the
// Cluster API and destroys it with its data; on heal it adds the member
// back (same name and address, new member ID) and starts it empty, to
// catch up from the others by log or snapshot. The cluster keeps serving
// throughout, one member short.
type MemberReplace struct {
	removed *compose.Member
	effects map[string]string // the heal's, when it had to nudge (catchUp)
}

func (r *MemberReplace) Effects() map[string]string { return r.effects }

func (*MemberReplace) Name() string    { return "member-replace" }
func (*MemberReplace) minMembers() int { return 3 }

func (r *MemberReplace) Start(ctx context.Context, c Cluster, rnd *rand.Rand) ([]*compose.Member, error) {
	r.effects = nil
	ms, err := pickRandom.choose(ctx, c, rnd)
	if err != nil {
		return nil, err
	}
	if err := r.remove(ctx, c, ms[0]); err != nil {
		return nil, err
	}
	return ms, nil
}

// remove takes m out of the cluster (Cluster API, through the others) and
// destroys it with its data; Heal then adds it back.
func (r *MemberReplace) remove(ctx context.Context, c Cluster, m *compose.Member) error {
	cli, err := c.Client(without(c.List(), m)...)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("listing members: %w", err)
	}
	id := memberID(list.Members, m)
	if id == 0 {
		return fmt.Errorf("%s (%s) is not in the member list", m.Name, m.PeerURL)
	}
	r.removed = m
	// etcd refuses a removal that would leave too few members it has heard
	// from lately ("unhealthy cluster"), as it may just after a restart.
	if _, err := waitFor(ctx, 10*time.Second, func() (bool, error) {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := cli.MemberRemove(actx, id)
		if errors.Is(err, rpctypes.ErrMemberNotFound) {
			return true, nil // an earlier try that timed out went through
		}
		return err == nil, err
	}); err != nil {
		return fmt.Errorf("removing %s from the cluster: %w", m.Name, err)
	}
	return c.Wipe(ctx, m)
}

// Heal adds the member back, wherever Start got to: if the cluster still
// lists it, only a fresh start is missing.
func (r *MemberReplace) Heal(ctx context.Context, c Cluster) error {
	m := r.removed
	if m == nil {
		return nil
	}
	cli, err := c.Client(without(c.List(), m)...)
	if err != nil {
		return err
	}
	defer cli.Close()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("listing members: %w", err)
	}
	listed := memberID(list.Members, m) != 0
	if listed && m.Instance != "" {
		// Start never removed it.
		r.removed = nil
		return nil
	}
	if err := c.Wipe(ctx, m); err != nil {
		return err
	}
	if !listed {
		// With one member gone the quorum may need a moment after the
		// removal before it takes another configuration change.
		if _, err := waitFor(ctx, 20*time.Second, func() (bool, error) {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			res, err := cli.MemberAdd(actx, []string{m.PeerURL})
			if err != nil {
				return false, err
			}
			list.Members = res.Members
			return true, nil
		}); err != nil {
			return fmt.Errorf("adding %s back: %w", m.Name, err)
		}
	}
	var initial []string
	for _, x := range list.Members {
		name := x.Name
		if slices.Contains(x.PeerURLs, m.PeerURL) {
			name = m.Name
		}
		for _, u := range x.PeerURLs {
			initial = append(initial, name+"="+u)
		}
	}
	if err := c.Rejoin(ctx, m, strings.Join(initial, ",")); err != nil {
		return err
	}
	r.removed = nil
	return r.catchUp(ctx, c, cli, m, list.Members)
}

// catchUpWait bounds how long a member added back empty may take to catch
// up: a snapshot of the whole key space, then the entries after it.
const catchUpWait = 30 * time.Second

// nudgeAfter is how long catchUp waits for a member that makes no progress
// before it gives the cluster an entry to commit.
const nudgeAfter = 3 * time.Second

// catchUp waits until m, added back empty, has applied what the others had:
// healed means whole again, and a replacement still catching up, hit by
// the next window's fault with another member, would leave a majority out
// of date, more than one fault at a time.
//
// A member that installed a snapshot counts as applied only the entries
// after it (etcd, every release: its applied index moves with entries, not
// with the snapshot), and refuses to join ("too many requests") while that
// lags the snapshot by more than 5000 entries. In a cluster nobody writes
// to, as in the final phase, it would wait for ever. So while m makes no
// progress, catchUp updates m's membership to what it already is: an
// entry, which changes nothing a client can see.
func (r *MemberReplace) catchUp(ctx context.Context, c Cluster, cli *clientv3.Client, m *compose.Member, members []*etcdserverpb.Member) error {
	id := memberID(members, m)
	nudged := 0
	mark := appliedElsewhere(ctx, c, m)
	last := time.Now()
	_, err := waitFor(ctx, catchUpWait, func() (bool, error) {
		ok, err := caughtUp(ctx, c, m, mark)
		if !ok && id != 0 && time.Since(last) >= nudgeAfter {
			last = time.Now()
			uctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if _, uerr := cli.MemberUpdate(uctx, id, []string{m.PeerURL}); uerr == nil {
				nudged++
			}
		}
		return ok, err
	})
	if nudged > 0 {
		r.effects = map[string]string{m.Name: fmt.Sprintf("added back empty, it caught up only once %d no-op membership update(s) gave it an entry to apply after the snapshot it installed", nudged)}
	}
	if err != nil {
		return fmt.Errorf("%s, added back empty, has not caught up with the others: %w", m.Name, err)
	}
	return nil
}

// memberID is the ID under which members list m (by its peer URL), 0 if
// they do not.
func memberID(members []*etcdserverpb.Member, m *compose.Member) uint64 {
	for _, x := range members {
		if slices.Contains(x.PeerURLs, m.PeerURL) {
			return x.ID
		}
	}
	return 0
}

func without(ms []*compose.Member, out ...*compose.Member) []*compose.Member {
	return slices.DeleteFunc(slices.Clone(ms), func(m *compose.Member) bool { return slices.Contains(out, m) })
}
