package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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
)

// Partition cuts links between members: each member drops what comes
// from the members it must not hear. In containers the agent installs
// netfilter rules in the member's network namespace (see cmd/agent); for
// local processes the harness's peer proxies hold those members'
// connections (see compose). Either way the harness's clients still reach
// every member: an isolated leader still takes requests it can no longer
// commit. Heal removes every rule.
type Partition struct {
	kind    partKind
	touched []*compose.Member
	how     string
}

func (p *Partition) Name() string {
	return "partition-" + [...]string{"leader", "random", "halves", "majorities-ring", "bridge"}[p.kind]
}

// Mechanism is how the cluster the partition started on cuts links.
func (p *Partition) Mechanism() string { return p.how }

func (p *Partition) minMembers() int {
	return [...]int{2, 2, 3, 4, 3}[p.kind]
}

// Start computes the grudge and installs it on every member that drops
// anything. The members it reports hit are the ones cut off: the isolated
// member, the minority, the bridge, or for the ring every member, in ring
// order.
func (p *Partition) Start(ctx context.Context, c Cluster) ([]*compose.Member, error) {
	p.how = c.Cuts()
	ms := c.List()
	byName := map[string]*compose.Member{}
	for _, m := range ms {
		byName[m.Name] = m
	}
	order := names(shuffled(ms))
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

	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	// All members at once, so the partition forms within one exec's time.
	for _, m := range ms {
		if len(g[m.Name]) == 0 {
			continue
		}
		var ips []string
		for _, n := range g[m.Name] {
			ips = append(ips, byName[n].IP)
		}
		p.touched = append(p.touched, m)
		wg.Go(func() {
			if _, err := c.Exec(ctx, m, append([]string{compose.AgentPath, "drop"}, ips...)...); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []*compose.Member
	for _, n := range hit {
		out = append(out, byName[n])
	}
	return out, nil
}

// Heal removes the rules from every member the partition touched.
func (p *Partition) Heal(ctx context.Context, c Cluster) error {
	err := removeRules(ctx, c, p.touched)
	p.touched = nil
	return err
}

// removeRules runs the agent's heal on members, all at once.
func removeRules(ctx context.Context, c Cluster, ms []*compose.Member) error {
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			if _, err := c.Exec(ctx, m, compose.AgentPath, "heal"); err != nil {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// rulesLeft returns the agent's rules on m, one per address it drops
// packets from ("10.0.0.12", or "10.0.0.12 20%" for random loss).
func rulesLeft(ctx context.Context, c Cluster, m *compose.Member) ([]string, error) {
	out, err := c.Exec(ctx, m, compose.AgentPath, "list")
	if err != nil {
		return nil, fmt.Errorf("listing %s's rules: %w", m.Name, err)
	}
	var rules []string
	for l := range strings.Lines(out) {
		if l = strings.TrimSpace(l); l != "" {
			rules = append(rules, l)
		}
	}
	return rules, nil
}
