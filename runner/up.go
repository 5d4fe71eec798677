package runner

import (
	"context"
	"fmt"

	"github.com/faultline/faultline/compose"
)

// Up boots the test's cluster alone, for faultline up: no workload, no
// nemesis, no run directory, only the target, size and runtime of its
// config. With keep the cluster outlives this process (compose.Config.Keep)
// and compose.DownKept removes it; without, the caller downs it. release
// frees what starting it needed (the Docker client), once the caller is
// done with the cluster.
func Up(ctx context.Context, t Test, keep bool) (_ *compose.Cluster, release func(), err error) {
	if err := t.Validate(); err != nil {
		return nil, nil, err
	}
	cfg := t.Config
	target, err := compose.ParseTarget(cfg.Target, cfg.Version)
	if err != nil {
		return nil, nil, err
	}
	up, release, err := t.prepare(ctx, target, &cfg)
	if err != nil {
		return nil, nil, err
	}
	cfg.RunID = compose.NewRunID()
	cluster, err := t.boot(up, target, cfg, compose.Config{Keep: keep})
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("starting the cluster: %w", err)
	}
	return cluster, release, nil
}
