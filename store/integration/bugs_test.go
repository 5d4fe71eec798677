package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/store/member"
	"github.com/faultline/faultline/store/server"
)

func withBug(name string) func(int, *member.Config) {
	return func(_ int, c *member.Config) {
		var b server.Bugs
		if err := b.Set(name); err != nil {
			panic(err)
		}
		c.Bugs = b
	}
}

// staleReadScenario isolates a follower that has seen k=v1, writes k=v2
// through the leader, then reads k linearizably from the isolated follower.
func staleReadScenario(t *testing.T, tweak func(int, *member.Config)) (string, error) {
	c := newCluster(t, 3, tweak)
	ctx := testCtx(t)
	leader := c.waitLeader(ctx)
	f := (leader + 1) % 3
	lcli := c.client(c.cfgs[leader].AdvertiseClientURLs[0])
	fcli := c.client(c.cfgs[f].AdvertiseClientURLs[0])
	if _, err := lcli.Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	for {
		gr, err := fcli.Get(ctx, "k", clientv3.WithSerializable())
		if err == nil && gr.Count == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.members[f].Isolate(true)
	if _, err := lcli.Put(ctx, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	gr, err := fcli.Get(rctx, "k")
	if err != nil {
		return "", err
	}
	return string(gr.Kvs[0].Value), nil
}

func TestStaleReadBug(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		v, err := staleReadScenario(t, nil)
		if err == nil && v != "v2" {
			t.Fatalf("linearizable read from a partitioned follower returned stale %q", v)
		}
	})
	t.Run("on", func(t *testing.T) {
		v, err := staleReadScenario(t, withBug("stale-read"))
		if err != nil || v != "v1" {
			t.Fatalf("stale-read bug did not serve the stale value: %q, %v", v, err)
		}
	})
}

// With ack-before-commit, a leader cut off from its followers acknowledges a
// put that the rest of the cluster never sees.
func TestAckBeforeCommitBug(t *testing.T) {
	c := newCluster(t, 3, withBug("ack-before-commit"))
	ctx := testCtx(t)
	leader := c.waitLeader(ctx)
	lcli := c.client(c.cfgs[leader].AdvertiseClientURLs[0])
	c.members[leader].Isolate(true)
	pctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	_, err := lcli.Put(pctx, "lost", "v")
	cancel()
	if err != nil {
		t.Fatalf("the bug should have acknowledged the put: %v", err)
	}
	other := c.client(c.cfgs[(leader+1)%3].AdvertiseClientURLs[0])
	// The majority elects a new leader; then the old one rejoins and its
	// uncommitted entry is overwritten.
	oldID := c.members[leader].ID()
	for {
		st, err := other.Status(ctx, c.cfgs[(leader+1)%3].AdvertiseClientURLs[0])
		if err == nil && st.Leader != 0 && st.Leader != oldID {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.members[leader].Isolate(false)
	for {
		if _, err := other.Put(ctx, "marker", "m"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range c.members {
		gr, err := c.client(c.cfgs[i].AdvertiseClientURLs[0]).Get(ctx, "lost")
		if err != nil {
			t.Fatal(err)
		}
		if gr.Count != 0 {
			t.Fatalf("member %d has the write; the scenario did not lose it", i)
		}
	}
}

// watchScenario makes n writes and returns the revisions a watcher saw.
func watchScenario(t *testing.T, tweak func(int, *member.Config), n int) (first int64, revs []int64) {
	c := newCluster(t, 1, tweak)
	ctx := testCtx(t)
	c.waitLeader(ctx)
	cli := c.client()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wc := cli.Watch(wctx, "w", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	<-wc
	var last int64
	for i := 0; i < n; i++ {
		pr, err := cli.Put(ctx, fmt.Sprintf("w%d", i), "v")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = pr.Header.Revision
		}
		last = pr.Header.Revision
	}
	if err := cli.RequestProgress(wctx); err != nil {
		t.Fatal(err)
	}
	for wr := range wc {
		if wr.IsProgressNotify() && wr.Header.Revision >= last {
			break
		}
		for _, e := range wr.Events {
			revs = append(revs, e.Kv.ModRevision)
		}
	}
	return first, revs
}

func TestWatchBugs(t *testing.T) {
	const n = 200
	check := func(first int64, revs []int64) (missing, dups int) {
		seen := map[int64]int{}
		for _, r := range revs {
			seen[r]++
		}
		for r := first; r < first+n; r++ {
			switch {
			case seen[r] == 0:
				missing++
			case seen[r] > 1:
				dups++
			}
		}
		return
	}
	t.Run("off", func(t *testing.T) {
		if m, d := check(watchScenario(t, nil, n)); m != 0 || d != 0 {
			t.Fatalf("correct watch: %d missing, %d duplicated", m, d)
		}
	})
	t.Run("watch-drop", func(t *testing.T) {
		if m, _ := check(watchScenario(t, withBug("watch-drop"), n)); m == 0 {
			t.Fatal("watch-drop dropped nothing")
		}
	})
	t.Run("watch-dup", func(t *testing.T) {
		if _, d := check(watchScenario(t, withBug("watch-dup"), n)); d == 0 {
			t.Fatal("watch-dup repeated nothing")
		}
	})
}

// A lease refreshed at half its TTL never expires, unless lease-early
// expires it at a third.
func TestLeaseEarlyBug(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for lease expiry")
	}
	scenario := func(t *testing.T, tweak func(int, *member.Config)) bool {
		c := newCluster(t, 1, tweak)
		ctx := testCtx(t)
		c.waitLeader(ctx)
		cli := c.client()
		l, err := cli.Grant(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, "held", "v", clientv3.WithLease(l.ID)); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			time.Sleep(2 * time.Second)
			gr, err := cli.Get(ctx, "held")
			if err != nil {
				t.Fatal(err)
			}
			if gr.Count == 0 {
				return false
			}
			if _, err := cli.KeepAliveOnce(ctx, l.ID); err != nil {
				return false
			}
		}
		return true
	}
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		if !scenario(t, nil) {
			t.Fatal("a lease refreshed at half its TTL expired")
		}
	})
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		if scenario(t, withBug("lease-early")) {
			t.Fatal("lease-early did not expire the lease early")
		}
	})
}

// With divergent-compact, the member with the highest ID keeps the history
// a compaction dropped on the others: reads of the current state agree,
// its hash and compaction revision do not.
func TestDivergentCompactBug(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("on=", on), func(t *testing.T) {
			var tweak func(int, *member.Config)
			if on {
				tweak = withBug("divergent-compact")
			}
			c := newCluster(t, 3, tweak)
			ctx := testCtx(t)
			c.waitLeader(ctx)
			cli := c.client()
			for i := range 10 {
				if _, err := cli.Put(ctx, "k", fmt.Sprint(i)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := cli.Compact(ctx, 8); err != nil {
				t.Fatal(err)
			}
			// A member that has the write after the compaction has applied it.
			last, err := cli.Put(ctx, "after", "x")
			if err != nil {
				t.Fatal(err)
			}
			for _, cfg := range c.cfgs {
				mc := c.client(cfg.AdvertiseClientURLs[0])
				for {
					gr, err := mc.Get(ctx, "after", clientv3.WithSerializable())
					if err == nil && gr.Count == 1 || ctx.Err() != nil {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			hrs := hashes(ctx, t, c.endpoints(), last.Header.Revision)
			var got []string
			for _, hr := range hrs {
				got = append(got, fmt.Sprintf("%x compacted at %d", hr.Hash, hr.CompactRevision))
			}
			highest := 0
			for i, hr := range hrs {
				if hr.Header.MemberId > hrs[highest].Header.MemberId {
					highest = i
				}
			}
			var differ []int
			for i, hr := range hrs {
				if hr.Hash != hrs[(highest+1)%3].Hash || hr.CompactRevision != hrs[(highest+1)%3].CompactRevision {
					differ = append(differ, i)
				}
			}
			switch {
			case on && fmt.Sprint(differ) != fmt.Sprint([]int{highest}):
				t.Errorf("members %v differ from the others, want only %d, the highest ID: %v", differ, highest, got)
			case !on && len(differ) > 0:
				t.Errorf("members %v differ from the others without the bug: %v", differ, got)
			}
			for i, cfg := range c.cfgs {
				gr, err := c.client(cfg.AdvertiseClientURLs[0]).Get(ctx, "k", clientv3.WithSerializable())
				if err != nil || string(gr.Kvs[0].Value) != "9" {
					t.Errorf("member %d reads k as %v, %v", i, gr, err)
				}
			}
		})
	}
}

// txnReadBehindScenario writes y=1 then y=2, then runs one Txn that puts x
// and reads y, and returns what it read of y.
func txnReadBehindScenario(t *testing.T, tweak func(int, *member.Config)) string {
	c := newCluster(t, 1, tweak)
	ctx := testCtx(t)
	cli := c.client(c.cfgs[c.waitLeader(ctx)].AdvertiseClientURLs[0])
	for _, v := range []string{"1", "2"} {
		if _, err := cli.Put(ctx, "y", v); err != nil {
			t.Fatal(err)
		}
	}
	res, err := cli.Txn(ctx).Then(clientv3.OpPut("x", "1"), clientv3.OpGet("y")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	return string(res.Responses[1].GetResponseRange().Kvs[0].Value)
}

// TestTxnReadBehindBug: with the switch on, a transaction that writes reads
// the state before the latest write; a read-only one is not affected.
func TestTxnReadBehindBug(t *testing.T) {
	if v := txnReadBehindScenario(t, nil); v != "2" {
		t.Errorf("without the bug a txn read y = %q, want 2", v)
	}
	if v := txnReadBehindScenario(t, withBug("txn-read-behind")); v != "1" {
		t.Errorf("with txn-read-behind a writing txn read y = %q, want the older 1", v)
	}
}
