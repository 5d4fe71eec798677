package nemesis

import (
	"context"
	"errors"
	"strconv"
	"sync"

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
	Loss    int
	touched []*compose.Member
}

func (*PeerLoss) Name() string    { return "peer-loss" }
func (*PeerLoss) minMembers() int { return 2 }

func (p *PeerLoss) Start(ctx context.Context, c Cluster) ([]*compose.Member, error) {
	loss := p.Loss
	if loss == 0 {
		loss = DefaultPeerLoss
	}
	ms := c.List()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, m := range ms {
		cmd := []string{compose.AgentPath, "drop", "-loss", strconv.Itoa(loss)}
		for _, o := range ms {
			if o != m {
				cmd = append(cmd, o.IP)
			}
		}
		p.touched = append(p.touched, m)
		wg.Go(func() {
			if _, err := c.Exec(ctx, m, cmd...); err != nil {
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
	return ms, nil
}

func (p *PeerLoss) Heal(ctx context.Context, c Cluster) error {
	err := removeRules(ctx, c, p.touched)
	p.touched = nil
	return err
}
