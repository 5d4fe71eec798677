package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/faultline/faultline/compose"
)

// MemberReplace removes a random member from the cluster through the
// Cluster API and destroys it with its data; on heal it adds the member
// back (same name and address, new member ID) and starts it empty, to
// catch up from the others by log or snapshot. The cluster keeps serving
// throughout, one member short.
type MemberReplace struct {
	removed *compose.Member
}

func (*MemberReplace) Name() string    { return "member-replace" }
func (*MemberReplace) minMembers() int { return 3 }

func (r *MemberReplace) Start(ctx context.Context, c Cluster, rnd *rand.Rand) ([]*compose.Member, error) {
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
	var id uint64
	for _, x := range list.Members {
		if slices.Contains(x.PeerURLs, m.PeerURL) {
			id = x.ID
		}
	}
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
	listed := false
	for _, x := range list.Members {
		listed = listed || slices.Contains(x.PeerURLs, m.PeerURL)
	}
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
	return nil
}

func without(ms []*compose.Member, out ...*compose.Member) []*compose.Member {
	return slices.DeleteFunc(slices.Clone(ms), func(m *compose.Member) bool { return slices.Contains(out, m) })
}
