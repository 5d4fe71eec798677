package nemesis

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/compose"
)

type partKind int

const (
	partLeader partKind = iota
	partRandom
	partHalves
	partRing
	partBridge
	partMember
)

// Partition cuts links between members: each member drops what comes
// from the members it must not hear. In containers the agent installs
// netfilter rules in the member's network namespace (see cmd/agent); for
// local processes the harness's peer proxies hold those members'
// connections (see compose). Either way the harness's clients still reach
// every member: an isolated leader still takes requests it can no longer
// commit. Heal removes every rule.
type Partition struct {
	kind partKind
	// member is partition-member's aim: a member's name, roleLeader or
	// roleFollower.
	member string
	how    string
	changedLinks
}

func (p *Partition) Name() string {
	if p.kind == partMember {
		return "partition-member=" + p.member
	}
	return "partition-" + [...]string{"leader", "random", "halves", "majorities-ring", "bridge"}[p.kind]
}

// Mechanism is how the cluster the partition started on cuts links.
func (p *Partition) Mechanism() string { return p.how }

// minMembers of partition-member=nK is K, so that Fits refuses a member
// the cluster will not have.
func (p *Partition) minMembers() int {
	if p.kind == partMember {
		k, err := strconv.Atoi(strings.TrimPrefix(p.member, "n"))
		if err != nil {
			return 2 // leader or follower
		}
		return max(2, k)
	}
	return [...]int{2, 2, 3, 4, 3}[p.kind]
}

// Start computes the grudge and installs it on every member that drops
// anything. The members it reports hit are the ones cut off: the isolated
// member, the minority, the bridge, or for the ring every member, in ring
// order.
func (p *Partition) Start(ctx context.Context, c Cluster, r *rand.Rand) ([]*compose.Member, error) {
	p.how = c.Links().Cuts()
	ms := c.List()
	byName := map[string]*compose.Member{}
	for _, m := range ms {
		byName[m.Name] = m
	}
	order := compose.Names(shuffled(r, ms))
	var (
		g   Grudge
		hit []string
		err error
	)
	switch p.kind {
	case partLeader:
		var l *compose.Member
		if l, err = findLeader(ctx, c, 5*time.Second); err != nil {
			return nil, err
		}
		g, err = isolate(order, l.Name)
		hit = []string{l.Name}
	case partRandom:
		g, err = isolate(order, order[0])
		hit = order[:1]
	case partMember:
		var one *compose.Member
		if one, err = aim(ctx, c, p.member, r); err == nil {
			g, err = isolate(order, one.Name)
			hit = []string{one.Name}
		}
	case partHalves:
		g, hit, err = halves(order)
	case partRing:
		g, err = ring(order)
		hit = order
	case partBridge:
		var b string
		g, b, err = bridge(order)
		hit = []string{b}
	}
	if err != nil {
		return nil, err
	}
	slog.Debug("partition", "fault", p.Name(), "grudge", g)

	if p.touched, err = cutLinks(ctx, c, ms, g); err != nil {
		return nil, err
	}
	var out []*compose.Member
	for _, n := range hit {
		out = append(out, byName[n])
	}
	return out, nil
}

// cutLinks installs grudge g on each of ms that drops anything, all at
// once, so that the partition forms within one exec's time, and returns
// those members, whose rules a heal removes.
func cutLinks(ctx context.Context, c Cluster, ms []*compose.Member, g Grudge) ([]*compose.Member, error) {
	byName := map[string]*compose.Member{}
	for _, m := range ms {
		byName[m.Name] = m
	}
	from := map[*compose.Member][]*compose.Member{}
	var touched []*compose.Member
	for _, m := range ms {
		for _, n := range g[m.Name] {
			from[m] = append(from[m], byName[n])
		}
		if len(from[m]) > 0 {
			touched = append(touched, m)
		}
	}
	return touched, onEach(touched, func(m *compose.Member) error { return c.Links().Drop(ctx, m, 100, from[m]...) })
}

// memberAim matches partition-member's setting when it names a member.
var memberAim = regexp.MustCompile(`^n[1-9]$`)

// parseMemberAim reads partition-member=NAME.
func parseMemberAim(arg string) (Fault, error) {
	if arg != roleLeader && arg != roleFollower && !memberAim.MatchString(arg) {
		if arg != "" {
			arg = "=" + arg
		}
		return nil, fmt.Errorf("partition-member%s: want a member's name, n1 to n%d, or leader, or follower (a random member that does not lead), e.g. partition-member=n2", arg, compose.MaxNodes)
	}
	return &Partition{kind: partMember, member: arg}, nil
}
