package workloads

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

// commitLogProcessBase is where the recorder's processes start: they are
// in a file of their own, and apart from every workload's all the same.
const commitLogProcessBase = 900_000

// CommitLog is the harness's recorder of what the cluster committed: on
// each of its clients (each pinned to one member) a watcher of the whole
// keyspace from revision 1, for the whole run, reopening after an error
// from the revision after the last one it covered and after a compaction
// from the compaction's revision (the revisions in between are a gap, as
// the history shows). It records as the watch workload's watchers do, under
// the watch operation names, into a recorder of its own (see
// checker.RecordedLog); it is one more watch stream per member, and no
// workload's counts or random choices change.
type CommitLog struct {
	o       Options
	clients []*clientv3.Client
	rec     *history.Recorder
	ps      *procs
	counts  Counts
	fl      *followers
}

// RecordCommits starts the recorder on clients, the watcher on clients[i]
// named after the member names[i].
func RecordCommits(ctx context.Context, clients []*clientv3.Client, names []string, rec *history.Recorder, o Options) *CommitLog {
	c := &CommitLog{o: o, clients: clients, rec: rec, ps: newProcs(commitLogProcessBase), fl: startFollowers(ctx)}
	for i, cli := range clients {
		wr := &watcher{actor: o.actor(cli, rec, &c.counts, c.ps, "commit-log", i),
			spec: watchSpec{id: "commit-log@" + names[i], key: "\x00", rangeEnd: "\x00", from: "first"},
			fin:  c.fl.fin, open: checker.WatchOpen, recv: checker.WatchRecv}
		c.fl.start(wr.run)
	}
	return c
}

// Finish reads the whole keyspace once (checker.LogRead), gives every
// watcher up to drain to cover that read's revision, and stops them.
func (c *CommitLog) Finish(ctx context.Context, drain time.Duration) {
	c.fl.catchUp(ctx, drain, func(ctx context.Context) int64 {
		return finalRead(ctx, c.clients, c.rec, c.ps, &c.counts, c.o.Members, c.o.OpTimeout, checker.LogRead, "\x00", "\x00")
	})
	c.Stop()
}

// Stop stops the watchers where they are (an interrupted run); after
// Finish it does nothing more.
func (c *CommitLog) Stop() { c.fl.stop() }
