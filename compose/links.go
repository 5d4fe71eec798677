package compose

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Links is the network between the members, as network faults cut, slow
// and heal it. Containers have it made by the agent inside each member (its
// commands are built below); local processes by the harness's peer
// proxies (see local).
type Links interface {
	// Drop makes m drop loss percent (100: all) of the packets that come
	// from the members in from, at random; it replaces m's earlier drops.
	Drop(ctx context.Context, m *Member, loss int, from ...*Member) error
	// Delay holds every chunk of m's peer traffic back d ± j, in order.
	Delay(ctx context.Context, m *Member, d, j time.Duration) error
	// Heal removes m's drops and delay.
	Heal(ctx context.Context, m *Member) error
	// Rules lists what m still does to its links: one line per address it
	// drops from ("10.0.0.12", or "10.0.0.12 20%" for random loss), and
	// "delay D jitter J" while its peer traffic is held back.
	Rules(ctx context.Context, m *Member) ([]string, error)
	// Netem says whether m's kernel has the netem qdisc, for the record
	// only: no fault uses it.
	Netem(ctx context.Context, m *Member) (string, error)
	// Cuts says how links between members are cut, for the run's record.
	Cuts() string
}

// Links is the network between the cluster's members.
func (c *Cluster) Links() Links { return c.run }

// A container's links are the agent's commands, run in the member with
// docker exec; their argv must match what cmd/agent parses.

func (r *containers) Drop(ctx context.Context, m *Member, loss int, from ...*Member) error {
	cmd := []string{"drop"}
	if loss < 100 {
		cmd = append(cmd, "-loss", strconv.Itoa(loss))
	}
	for _, o := range from {
		cmd = append(cmd, o.IP)
	}
	_, err := r.agent(ctx, m, cmd...)
	return err
}

func (r *containers) Delay(ctx context.Context, m *Member, d, j time.Duration) error {
	_, err := r.agent(ctx, m, "delay", d.String(), j.String())
	return err
}

func (r *containers) Heal(ctx context.Context, m *Member) error {
	_, err := r.agent(ctx, m, "heal")
	return err
}

func (r *containers) Rules(ctx context.Context, m *Member) ([]string, error) {
	out, err := r.agent(ctx, m, "list")
	if err != nil {
		return nil, err
	}
	var rules []string
	for l := range strings.Lines(out) {
		if l = strings.TrimSpace(l); l != "" {
			rules = append(rules, l)
		}
	}
	return rules, nil
}

func (r *containers) Netem(ctx context.Context, m *Member) (string, error) {
	out, err := r.agent(ctx, m, "netem")
	return strings.TrimSpace(out), err
}

func (r *containers) Cuts() string {
	return "netfilter drop rules between member addresses inside each member's network namespace"
}

func (r *containers) agent(ctx context.Context, m *Member, args ...string) (string, error) {
	return r.exec(ctx, m, append([]string{AgentPath}, args...))
}
