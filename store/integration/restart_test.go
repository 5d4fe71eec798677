package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/faultline/faultline/store/member"
)

func TestRestartWithData(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := testCtx(t)
	c.waitLeader(ctx)
	cli := c.client()
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%02d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	last, err := cli.Put(ctx, "last", "x")
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
	c.stopAll()
	for i := range c.cfgs {
		c.start(i)
	}
	c.waitLeader(ctx)
	cli = c.client()
	gr, err := cli.Get(ctx, "k", clientv3.WithPrefix())
	if err != nil || gr.Count != 20 {
		t.Fatalf("after restart: %+v, %v", gr, err)
	}
	if gr.Header.Revision != last.Header.Revision {
		t.Errorf("revision after restart = %d, want %d", gr.Header.Revision, last.Header.Revision)
	}
	sameHashes(ctx, t, c.endpoints(), last.Header.Revision)
	for i := range c.cfgs {
		sr, err := c.client(c.cfgs[i].AdvertiseClientURLs[0]).Get(ctx, "last", clientv3.WithSerializable())
		if err == nil && sr.Count == 1 {
			continue
		}
		// A member may still be replaying; a linearizable read waits for it.
		lr, err := c.client(c.cfgs[i].AdvertiseClientURLs[0]).Get(ctx, "last")
		if err != nil || lr.Count != 1 {
			t.Errorf("member %d lost data: %+v, %v", i, lr, err)
		}
	}
}

// A member that was down while the others snapshotted and compacted their
// logs catches up from a snapshot, and then survives its own restart.
func TestSnapshotCatchUp(t *testing.T) {
	c := newCluster(t, 3, func(i int, cfg *member.Config) {
		cfg.SnapshotCount = 20
		cfg.SnapshotCatchUpEntries = 5
	})
	ctx := testCtx(t)
	leader := c.waitLeader(ctx)
	lagging := (leader + 1) % 3
	c.stop(lagging)
	cli := c.client(c.cfgs[leader].AdvertiseClientURLs[0])
	for i := 0; i < 100; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%03d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Compact(ctx, 50); err != nil {
		t.Fatal(err)
	}
	// Versions after the compaction, overwrites and a tombstone, are in
	// the hash; enough of them that the snapshot the member catches up
	// from holds some.
	for i := 50; i < 80; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%03d", i), "again"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx, "k060"); err != nil {
		t.Fatal(err)
	}
	last, err := cli.Put(ctx, "k061", "again")
	if err != nil {
		t.Fatal(err)
	}
	c.start(lagging)
	lc := c.client(c.cfgs[lagging].AdvertiseClientURLs[0])
	gr, err := lc.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || gr.Count != 99 {
		t.Fatalf("lagging member after catch-up: %+v, %v", gr, err)
	}
	if _, err := lc.Get(ctx, "k000", clientv3.WithRev(10)); err == nil {
		t.Errorf("read below the compaction revision succeeded on the restored member")
	}
	sameHashes(ctx, t, c.endpoints(), last.Header.Revision)
	c.stop(lagging)
	c.start(lagging)
	lc = c.client(c.cfgs[lagging].AdvertiseClientURLs[0])
	gr, err = lc.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || gr.Count != 99 {
		t.Fatalf("restored member after its own restart: %+v, %v", gr, err)
	}
	sameHashes(ctx, t, c.endpoints(), last.Header.Revision)
}

// sameHashes checks that every member (by client URL) gives the same hash
// and compaction revision at rev.
func sameHashes(ctx context.Context, t *testing.T, urls []string, rev int64) {
	t.Helper()
	hrs := hashes(ctx, t, urls, rev)
	for i, hr := range hrs[1:] {
		if hr.Hash != hrs[0].Hash || hr.CompactRevision != hrs[0].CompactRevision {
			t.Errorf("member %d hashes revision %d as %x (compacted at %d), member 0 as %x (compacted at %d)",
				i+1, rev, hr.Hash, hr.CompactRevision, hrs[0].Hash, hrs[0].CompactRevision)
		}
	}
}

// hashes waits until every member can hash at rev and returns their
// answers, in the order of urls.
func hashes(ctx context.Context, t *testing.T, urls []string, rev int64) []*clientv3.HashKVResponse {
	t.Helper()
	var out []*clientv3.HashKVResponse
	for i, url := range urls {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		hr, err := cli.HashKV(ctx, url, rev)
		for ; err != nil && ctx.Err() == nil; hr, err = cli.HashKV(ctx, url, rev) {
			time.Sleep(50 * time.Millisecond) // still catching up
		}
		cli.Close()
		if err != nil {
			t.Fatalf("member %d: hash at %d: %v", i, rev, err)
		}
		out = append(out, hr)
	}
	return out
}

// A watcher on a member that catches up through a snapshot still sees every
// event, in order.
func TestWatchAcrossSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(i int, cfg *member.Config) {
		cfg.SnapshotCount = 20
		cfg.SnapshotCatchUpEntries = 5
	})
	ctx := testCtx(t)
	leader := c.waitLeader(ctx)
	f := (leader + 1) % 3
	fcli := c.client(c.cfgs[f].AdvertiseClientURLs[0])
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wc := fcli.Watch(wctx, "s/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	<-wc
	c.members[f].Isolate(true)
	cli := c.client(c.cfgs[leader].AdvertiseClientURLs[0])
	const n = 100
	for i := 0; i < n; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("s/%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	c.members[f].Isolate(false)
	var got []string
	for len(got) < n {
		select {
		case wr := <-wc:
			if err := wr.Err(); err != nil {
				t.Fatal(err)
			}
			for _, e := range wr.Events {
				got = append(got, string(e.Kv.Key))
			}
		case <-ctx.Done():
			t.Fatalf("got %d of %d events", len(got), n)
		}
	}
	for i, k := range got {
		if want := fmt.Sprintf("s/%03d", i); k != want {
			t.Fatalf("event %d is %s, want %s", i, k, want)
		}
	}
}
