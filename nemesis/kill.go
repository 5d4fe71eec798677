package nemesis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/faultline/faultline/compose"
)

// KillLeader SIGKILLs the member that currently leads and, on heal,
// restarts it with its data.
type KillLeader struct {
	killed []*compose.Member
}

func (*KillLeader) Name() string { return "kill-leader" }

func (k *KillLeader) Start(ctx context.Context, c Cluster) ([]*compose.Member, error) {
	leader, err := findLeader(ctx, c, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if err := c.Kill(ctx, leader); err != nil {
		return nil, err
	}
	k.killed = append(k.killed, leader)
	return []*compose.Member{leader}, nil
}

func (k *KillLeader) Heal(ctx context.Context, c Cluster) error {
	var errs []error
	for _, m := range k.killed {
		errs = append(errs, c.Start(ctx, m))
	}
	k.killed = nil
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
