package runner

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
)

// watchLeader polls every member's status until stop is closed or ctx is
// done, and records a leader event whenever the leader the members report
// changes, including to none (an election in progress, or no member
// answering). On stop it records the leader once more, changed or not, so
// the history ends with the leader the cluster settled on. ids names the
// members by their ids.
func watchLeader(ctx context.Context, stop <-chan struct{}, c *compose.Cluster, ids map[uint64]string, rec *history.Recorder) {
	clients := make([]*clientv3.Client, len(c.Members))
	for i, m := range c.Members {
		cli, err := c.Client(m)
		if err != nil {
			continue
		}
		defer cli.Close()
		clients[i] = cli
	}
	var last, lastTerm uint64
	observe := func(always bool) {
		leader, term := pollLeader(ctx, c, clients)
		if !always && leader == last && term <= lastTerm {
			return
		}
		e := history.Event{Type: history.Info, Process: history.Nemesis, F: history.Leader, FaultInfo: &history.FaultInfo{Term: term}}
		if leader != 0 {
			e.Nodes = []string{ids[leader]}
		}
		if ctx.Err() == nil {
			rec.Record(e)
		}
		last, lastTerm = leader, term
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	observe(true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			observe(true)
			return
		case <-tick.C:
			observe(false)
		}
	}
}

// pollLeader returns the leader with the highest term any member reports
// (members behind a partition may still name an old one), or 0.
func pollLeader(ctx context.Context, c *compose.Cluster, clients []*clientv3.Client) (leader, term uint64) {
	for i, cli := range clients {
		if cli == nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		st, err := cli.Status(sctx, c.Members[i].ClientURL)
		cancel()
		if err != nil || st.Leader == 0 {
			continue
		}
		if st.RaftTerm > term {
			leader, term = st.Leader, st.RaftTerm
		}
	}
	return leader, term
}
