package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/store/member"
)

func nextWatch(t *testing.T, ctx context.Context, wc clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case wr, ok := <-wc:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return wr
	case <-ctx.Done():
		t.Fatal("timed out waiting for a watch response")
	}
	return clientv3.WatchResponse{}
}

func TestWatch(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := testCtx(t)
	leader := c.waitLeader(ctx)
	cli := c.client(c.cfgs[leader].AdvertiseClientURLs[0])
	wcli := c.client(c.cfgs[(leader+1)%3].AdvertiseClientURLs[0])

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	live := wcli.Watch(wctx, "w/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	// Make sure the watch is registered before writing.
	if _, err := wcli.Get(ctx, "w/"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	first, _ := cli.Put(ctx, "w/a", "1")
	cli.Put(ctx, "w/a", "2")
	cli.Put(ctx, "other", "x")
	cli.Txn(ctx).Then(clientv3.OpPut("w/b", "1"), clientv3.OpDelete("w/a")).Commit()

	var evs []*clientv3.Event
	for len(evs) < 4 {
		wr := nextWatch(t, ctx, live)
		if wr.Err() != nil {
			t.Fatal(wr.Err())
		}
		// All events of one revision arrive together.
		for _, e := range wr.Events {
			if e.Kv.ModRevision != wr.Events[0].Kv.ModRevision {
				t.Errorf("one response mixes revisions: %v", wr.Events)
			}
		}
		evs = append(evs, wr.Events...)
	}
	if evs[0].Type != mvccpb.PUT || !evs[0].IsCreate() || string(evs[0].Kv.Value) != "1" {
		t.Errorf("event 0 = %v", evs[0])
	}
	if !evs[1].IsModify() || string(evs[1].PrevKv.Value) != "1" {
		t.Errorf("event 1 = %v, prev %v", evs[1], evs[1].PrevKv)
	}
	if evs[2].Kv.ModRevision != evs[3].Kv.ModRevision {
		t.Errorf("txn events at different revisions: %v %v", evs[2], evs[3])
	}
	if evs[3].Type != mvccpb.DELETE || string(evs[3].PrevKv.Value) != "2" {
		t.Errorf("event 3 = %v, prev %v", evs[3], evs[3].PrevKv)
	}

	// Replay from a past revision.
	replay := wcli.Watch(wctx, "w/a", clientv3.WithRev(first.Header.Revision))
	wr := nextWatch(t, ctx, replay)
	if len(wr.Events) == 0 || wr.Events[0].Kv.ModRevision != first.Header.Revision {
		t.Fatalf("replay = %+v", wr)
	}
	// The client broadcasts progress to every watcher on the stream; keep
	// this one drained.
	go func() {
		for range replay {
		}
	}()

	// Progress: an explicit request is answered with the current revision.
	if err := wcli.RequestProgress(wctx); err != nil {
		t.Fatal(err)
	}
	for {
		wr := nextWatch(t, ctx, live)
		if wr.IsProgressNotify() {
			break
		}
	}

	// A watch below the compaction revision is cancelled with it.
	last, _ := cli.Put(ctx, "w/c", "1")
	if _, err := cli.Compact(ctx, last.Header.Revision); err != nil {
		t.Fatal(err)
	}
	// A linearizable read makes the watcher's member apply the compaction.
	if _, err := wcli.Get(ctx, "w/c"); err != nil {
		t.Fatal(err)
	}
	old := wcli.Watch(wctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(first.Header.Revision))
	for {
		wr := nextWatch(t, ctx, old)
		if wr.CompactRevision != 0 {
			if wr.Err() != rpctypes.ErrCompacted {
				t.Errorf("compacted watch error = %v", wr.Err())
			}
			break
		}
	}
}

func TestLease(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := testCtx(t)
	leader := c.waitLeader(ctx)
	// Talk to a follower, so keepalives are forwarded to the leader.
	cli := c.client(c.cfgs[(leader+1)%3].AdvertiseClientURLs[0])

	// The client renews the kept lease every third of its TTL, so it
	// lapses only if renewals stall for five seconds. With the minimum TTL
	// (a second here) it lapsed whenever a loaded machine held up the
	// first renewal, or any, for a second.
	kept, err := cli.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	ka, err := cli.KeepAlive(kctx, kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ka {
		}
	}()
	if _, err := cli.Put(ctx, "kept", "1", clientv3.WithLease(kept.ID)); err != nil {
		t.Fatal(err)
	}
	// Granted after the kept lease and for a second longer, the
	// unrefreshed one expires after the kept one would have without its
	// renewals: once its key is gone, an unrenewed kept lease has been
	// revoked too, however slow the machine.
	short, err := cli.Grant(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "eph", "1", clientv3.WithLease(short.ID)); err != nil {
		t.Fatal(err)
	}
	ttl, err := cli.TimeToLive(ctx, kept.ID, clientv3.WithAttachedKeys())
	if err != nil || len(ttl.Keys) != 1 || ttl.GrantedTTL != 5 {
		t.Fatalf("time to live = %+v, %v", ttl, err)
	}
	for {
		gr, err := cli.Get(ctx, "eph")
		if err != nil {
			t.Fatal(err)
		}
		if gr.Count == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("leased key never expired")
		}
		time.Sleep(100 * time.Millisecond)
	}
	gr, err := cli.Get(ctx, "kept")
	if err != nil || gr.Count != 1 {
		t.Fatalf("kept-alive key = %+v, %v", gr, err)
	}
	if _, err := cli.Revoke(ctx, kept.ID); err != nil {
		t.Fatal(err)
	}
	if gr, _ := cli.Get(ctx, "kept"); gr.Count != 0 {
		t.Errorf("key survived revoke")
	}
	if _, err := cli.Put(ctx, "x", "1", clientv3.WithLease(kept.ID)); err != rpctypes.ErrLeaseNotFound {
		t.Errorf("put with revoked lease: %v", err)
	}
	ls, err := cli.Leases(ctx)
	if err != nil || len(ls.Leases) != 0 {
		t.Errorf("leases = %+v, %v", ls, err)
	}
}

// A watch that starts past its member's revision (a client resuming on a
// member behind the one it left) must hear of no progress until the
// member reaches where it starts: progress at a lower revision would take
// back events the client was already sent.
func TestWatchProgressNeverGoesBack(t *testing.T) {
	c := newCluster(t, 1, func(_ int, cfg *member.Config) { cfg.WatchProgressNotifyInterval = 100 * time.Millisecond })
	ctx := testCtx(t)
	c.waitLeader(ctx)
	cli := c.client(c.cfgs[0].AdvertiseClientURLs[0])
	now, err := cli.Put(ctx, "p/a", "0")
	if err != nil {
		t.Fatal(err)
	}
	start := now.Header.Revision + 5
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := cli.Watch(wctx, "p/", clientv3.WithPrefix(), clientv3.WithRev(start), clientv3.WithProgressNotify())
	if err := cli.RequestProgress(wctx); err != nil {
		t.Fatal(err)
	}
	behind := time.After(time.Second)
	for waiting := true; waiting; {
		select {
		case wr := <-w:
			if wr.IsProgressNotify() && wr.Header.Revision < start-1 {
				t.Fatalf("progress at revision %d to a watch that starts at %d", wr.Header.Revision, start)
			}
		case <-behind:
			waiting = false
		}
	}
	for i := range 5 {
		if _, err := cli.Put(ctx, "p/a", fmt.Sprint(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	// Caught up, it hears of progress again.
	for {
		wr := nextWatch(t, ctx, w)
		if wr.IsProgressNotify() {
			if wr.Header.Revision < start {
				t.Fatalf("progress at %d after the event at %d", wr.Header.Revision, start)
			}
			break
		}
	}
}
