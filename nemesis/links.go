package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/faultline/faultline/compose"
)

// DefaultPeerLoss is the share of packets, in percent, peer-loss drops.
const DefaultPeerLoss = 20

// PeerLoss makes every link between members flaky: each member drops Loss
// percent of the packets that come from the other members, at random.
//
// Mechanism: netfilter inside each member (the agent's rule matches the
// peer's address, then "numgen random mod 100 < Loss"), not tc netem,
// which this kernel lacks. Real IP packets are lost, so TCP retransmits
// and Raft sees slow, bursty links rather than broken ones. The harness's
// clients are not affected.
type PeerLoss struct {
	Loss int
	changedLinks
}

func (p *PeerLoss) Name() string {
	if p.Loss == 0 || p.Loss == DefaultPeerLoss {
		return "peer-loss"
	}
	return fmt.Sprintf("peer-loss=%d", p.Loss)
}
func (*PeerLoss) minMembers() int { return 2 }

func (*PeerLoss) Mechanism() string { return "netfilter random drop inside each member (no tc netem)" }

func (p *PeerLoss) Start(ctx context.Context, c Cluster, _ *rand.Rand) ([]*compose.Member, error) {
	loss := p.Loss
	if loss == 0 {
		loss = DefaultPeerLoss
	}
	ms := c.List()
	p.touched = ms
	err := onEach(ms, func(m *compose.Member) error { return c.Links().Drop(ctx, m, loss, without(ms, m)...) })
	if err != nil {
		return nil, err
	}
	return ms, nil
}

// changedLinks is the members a network fault changed the links of; Heal
// removes every rule from them.
type changedLinks struct{ touched []*compose.Member }

func (t *changedLinks) Heal(ctx context.Context, c Cluster) error {
	err := removeRules(ctx, c, t.touched)
	t.touched = nil
	return err
}

// removeRules heals the links of members, all at once.
func removeRules(ctx context.Context, c Cluster, ms []*compose.Member) error {
	return onEach(ms, func(m *compose.Member) error { return c.Links().Heal(ctx, m) })
}

// onEach does do to every member at once.
func onEach(ms []*compose.Member, do func(*compose.Member) error) error {
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() { errs[i] = do(m) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Default peer-latency settings.
const (
	DefaultPeerDelay  = 100 * time.Millisecond
	DefaultPeerJitter = 50 * time.Millisecond
)

// PeerLatency slows every link between members: each chunk of bytes a
// member's peer port sends or receives is held back Delay ± Jitter, in
// order.
//
// Mechanism: a userspace TCP proxy (the agent, which then is each member's
// entrypoint) in front of the member's peer port, as etcd's robustness
// tests do; this kernel has no sch_netem, so tc netem is not an option.
// The cluster must be started with compose.Config.PeerProxy (the runner
// does so when a run asks for peer-latency; see NeedsPeerProxy).
type PeerLatency struct {
	Delay, Jitter time.Duration
	changedLinks
	// netem is what the agent found out about the kernel's netem, once.
	netem string
}

// Mechanism says how the fault is made, for the run's record.
const PeerLatencyMechanism = "userspace TCP proxy in front of each member's peer port"

func (p *PeerLatency) Name() string {
	if p.Delay == 0 || p.Delay == DefaultPeerDelay && p.Jitter == DefaultPeerJitter {
		return "peer-latency"
	}
	return fmt.Sprintf("peer-latency=%s:%s", p.Delay, p.Jitter)
}
func (*PeerLatency) minMembers() int { return 2 }

// Mechanism names the proxy and what the agent found of the kernel's netem.
func (p *PeerLatency) Mechanism() string { return PeerLatencyMechanism + "; " + p.netem }
func (*PeerLatency) needsProxy()         {}

func (p *PeerLatency) Start(ctx context.Context, c Cluster, _ *rand.Rand) ([]*compose.Member, error) {
	d, j := p.Delay, p.Jitter
	if d == 0 {
		d, j = DefaultPeerDelay, DefaultPeerJitter
	}
	ms := c.List()
	if p.netem == "" && len(ms) > 0 {
		// Only said, not used: the proxy gives the same behaviour on every
		// kernel, with or without netem.
		out, err := c.Links().Netem(ctx, ms[0])
		p.netem = out
		if err != nil {
			p.netem = "netem: unknown (" + err.Error() + ")"
		}
		slog.Info("peer-latency", "mechanism", PeerLatencyMechanism, "kernel", p.netem)
	}
	p.touched = ms
	err := onEach(ms, func(m *compose.Member) error {
		if err := c.Links().Delay(ctx, m, d, j); err != nil {
			return fmt.Errorf("%w (peer-latency needs the members started behind the agent's peer proxy)", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ms, nil
}

// NeedsPeerProxy says whether a --nemesis value has a fault that needs the
// members started behind the agent's peer proxy.
func NeedsPeerProxy(spec string) bool {
	fs, err := Parse(spec)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(fs, needsProxy)
}

func needsProxy(f Fault) bool {
	return slices.ContainsFunc(parts(f), func(p Fault) bool {
		_, ok := p.(interface{ needsProxy() })
		return ok
	})
}
