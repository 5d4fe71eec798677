package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/compose"
)

// Compact compacts the store's history at a recent revision, under load:
// reads and watches of older revisions must fail with "compacted" from
// then on, and nothing newer may be lost. The fault is the compaction
// itself; heal has nothing to undo.
type Compact struct {
	// Keep is how many of the latest revisions the compaction keeps.
	Keep int64
}

// Compacts says whether one of fs compacts the store. The history does not
// record at which revisions, so the kv checker must not hold the kv
// workload's own compactions to account for every read refused as
// compacted.
func Compacts(fs []Fault) bool {
	return anyPart(fs, func(*Compact) bool { return true })
}

func (*Compact) Name() string                        { return "compact" }
func (*Compact) Heal(context.Context, Cluster) error { return nil }

func (a *Compact) Start(ctx context.Context, c Cluster, _ *rand.Rand) ([]*compose.Member, error) {
	cli, err := c.Client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := cli.Get(ctx, "faultline-nemesis-compact")
	if err != nil {
		return nil, fmt.Errorf("reading the current revision: %w", err)
	}
	keep := max(a.Keep, 1)
	rev := res.Header.Revision - keep
	if rev < 1 {
		return nil, fmt.Errorf("revision %d: nothing to compact yet", res.Header.Revision)
	}
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		return nil, fmt.Errorf("compacting at revision %d: %w", rev, err)
	}
	return c.List(), nil
}

// Defrag defragments every member's backend, one member at a time, as an
// operator would: a member does not serve while it defragments.
type Defrag struct{}

func (*Defrag) Name() string                        { return "defrag" }
func (*Defrag) Heal(context.Context, Cluster) error { return nil }

func (*Defrag) Start(ctx context.Context, c Cluster, _ *rand.Rand) ([]*compose.Member, error) {
	var errs []error
	for _, m := range c.List() {
		cli, err := c.Client(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := cli.Defragment(dctx, m.ClientURL); err != nil {
			errs = append(errs, fmt.Errorf("defragmenting %s: %w", m.Name, err))
		}
		cancel()
		cli.Close()
	}
	return c.List(), errors.Join(errs...)
}
