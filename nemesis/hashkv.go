package nemesis

import (
	"context"
	"fmt"
	"time"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
)

// Hashes asks every member, once the cluster has settled, for the hash of
// its keys at one revision all of them have (the lowest of their current
// revisions) and for its compaction revision. It records one hashkv event
// per member: the answer, or why there was none within limit. Members that
// applied the same log must give the same answer; the members-agree
// checker compares them.
func Hashes(ctx context.Context, c Cluster, rec *history.Recorder, limit time.Duration) {
	deadline := time.Now().Add(limit)
	ms := c.List()
	revs := map[*compose.Member]int64{}
	errs := map[*compose.Member]error{}
	// A member that does not answer must not use up the time the others'
	// hashes need.
	waitFor(ctx, limit/2, func() (bool, error) {
		for _, m := range ms {
			if _, ok := revs[m]; ok {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := c.Status(sctx, m)
			cancel()
			if err != nil {
				errs[m] = err
				continue
			}
			revs[m] = st.Revision
			delete(errs, m)
		}
		return len(errs) == 0, nil
	})
	var rev int64
	for _, r := range revs {
		if rev == 0 || r < rev {
			rev = r
		}
	}
	for _, m := range ms {
		e := history.Event{Type: history.Info, Process: history.Nemesis, F: history.HashKV, Member: m.Name, Revision: rev, FaultInfo: &history.FaultInfo{}}
		err := errs[m]
		if err == nil {
			e.Hash, e.CompactRevision, err = hashKV(ctx, c, m, rev, time.Until(deadline))
		}
		if err != nil {
			e.Error = err.Error()
		}
		rec.Record(e)
	}
}

// hashKV asks m for its hash at rev, trying again (a member may still be
// catching up) for at most limit, and at least once.
func hashKV(ctx context.Context, c Cluster, m *compose.Member, rev int64, limit time.Duration) (hash uint32, compacted int64, err error) {
	cli, err := c.Client(m)
	if err != nil {
		return 0, 0, err
	}
	defer cli.Close()
	_, err = waitFor(ctx, limit, func() (bool, error) {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		res, err := cli.HashKV(hctx, m.ClientURL, rev)
		if err != nil {
			return false, fmt.Errorf("hash of %s at revision %d: %w", m.Name, rev, err)
		}
		hash, compacted = res.Hash, res.CompactRevision
		return true, nil
	})
	return hash, compacted, err
}
