package nemesis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
)

// healthy says whether every member answers a status call and all of them
// agree on one leader that is a member.
func healthy(ctx context.Context, c Cluster) ([]compose.Status, error) {
	var sts []compose.Status
	ids := map[uint64]bool{}
	for _, m := range c.List() {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.Status(sctx, m)
		cancel()
		if err != nil {
			return nil, err
		}
		sts = append(sts, st)
		ids[st.ID] = true
	}
	for _, st := range sts {
		if st.Leader == 0 || st.Leader != sts[0].Leader {
			return nil, fmt.Errorf("no single leader: %s sees %x, %s sees %x", st.Member.Name, st.Leader, sts[0].Member.Name, sts[0].Leader)
		}
	}
	if len(sts) > 0 && !ids[sts[0].Leader] {
		return nil, fmt.Errorf("the leader %x is not a member", sts[0].Leader)
	}
	return sts, nil
}

// waitHealthy polls until the cluster is healthy, at most limit.
func waitHealthy(ctx context.Context, c Cluster, limit time.Duration) error {
	_, err := waitFor(ctx, limit, func() (bool, error) {
		_, err := healthy(ctx, c)
		return err == nil, err
	})
	return err
}

// waitFor polls cond every 100ms until it holds, ctx ends or limit passes;
// the error is cond's last one.
func waitFor(ctx context.Context, limit time.Duration, cond func() (bool, error)) (time.Duration, error) {
	start := time.Now()
	for {
		ok, err := cond()
		if ok {
			return time.Since(start), nil
		}
		if err == nil {
			err = errors.New("not yet")
		}
		if time.Since(start) >= limit {
			return time.Since(start), fmt.Errorf("after %s: %w", limit, err)
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return time.Since(start), fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		}
	}
}

// HealAll undoes every fault there could be, whoever made it: it thaws
// paused members, starts stopped ones, heals the disks of running ones and
// every member's links.
func HealAll(ctx context.Context, c Cluster) error {
	var errs []error
	for _, m := range c.List() {
		running, paused, err := c.State(ctx, m)
		switch {
		case err != nil:
			errs = append(errs, err)
		case paused:
			errs = append(errs, c.Unpause(ctx, m))
		case !running && m.Instance == "":
			errs = append(errs, fmt.Errorf("%s was removed (member-replace) and never rejoined", m.Name))
		case !running:
			errs = append(errs, c.Start(ctx, m))
		default:
			if d, err := c.Disks(); err == nil {
				errs = append(errs, d.HealDisk(ctx, m))
			}
		}
	}
	errs = append(errs, removeRules(ctx, c, c.List()))
	return errors.Join(errs...)
}

// nudge appends an entry that changes no key. A member that restored a
// snapshot may report the applied index of the last entry it applied
// before it (etcd v3.6 does), not the snapshot's, until it applies another
// entry; in a quiet cluster none comes, and the members would seem never
// to catch up.
func nudge(ctx context.Context, c Cluster) {
	cli, err := c.Client()
	if err != nil {
		return
	}
	defer cli.Close()
	addEntries(ctx, cli, 1)
}

// Leftovers lists what faults left behind: members stopped or paused, and
// link rules still in place. A healed cluster has none.
func Leftovers(ctx context.Context, c Cluster) ([]string, error) {
	var out []string
	for _, m := range c.List() {
		running, paused, err := c.State(ctx, m)
		if err != nil {
			return out, err
		}
		switch {
		case paused:
			out = append(out, m.Name+" is paused")
			continue
		case !running:
			out = append(out, m.Name+" is not running")
			continue
		}
		left, err := c.Links().Rules(ctx, m)
		if err != nil {
			return out, fmt.Errorf("listing %s's rules: %w", m.Name, err)
		}
		if len(left) > 0 {
			out = append(out, fmt.Sprintf("%s still drops packets from %v", m.Name, left))
		}
	}
	return out, nil
}

// Settle is the final phase: heal everything, make sure every member runs,
// and wait (at most limit) until the cluster has one leader, every member
// answers, and all of them have applied the same log, at the same
// revision. It records a recover event for the final phase (with Error
// set when the cluster did not settle) and returns how long it took.
func Settle(ctx context.Context, c Cluster, rec *history.Recorder, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	err := HealAll(ctx, c)
	var nudged time.Time
	if err == nil {
		_, err = waitFor(ctx, limit-time.Since(start), func() (bool, error) {
			sts, err := healthy(ctx, c)
			if err != nil {
				return false, err
			}
			for _, st := range sts[1:] {
				if st.Revision != sts[0].Revision || st.AppliedIndex != sts[0].AppliedIndex {
					if st.Revision == sts[0].Revision && time.Since(nudged) > time.Second {
						nudge(ctx, c)
						nudged = time.Now()
					}
					return false, fmt.Errorf("members not caught up: %s at revision %d applied index %d, %s at revision %d applied index %d",
						sts[0].Member.Name, sts[0].Revision, sts[0].AppliedIndex, st.Member.Name, st.Revision, st.AppliedIndex)
				}
			}
			return true, nil
		})
	}
	took := time.Since(start)
	e := history.Event{Type: history.Info, Process: history.Nemesis, F: Recover, FaultInfo: &history.FaultInfo{Fault: Final}}
	if err != nil {
		err = fmt.Errorf("the cluster did not settle after the final heal: %w", err)
		e.Error = err.Error()
	}
	if rec != nil {
		rec.Record(e)
	}
	return took, err
}
