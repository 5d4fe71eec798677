package integration

import (
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/store/member"
)

// TestMemberReplace does what the harness's member-replace fault does:
// remove a member through the Cluster API, destroy its data, add it back
// and start it empty with --initial-cluster-state existing; then restart it.
func TestMemberReplace(t *testing.T) {
	t.Run("from the log", func(t *testing.T) { memberReplace(t, nil) })
	t.Run("from a snapshot", func(t *testing.T) {
		memberReplace(t, func(i int, cfg *member.Config) {
			cfg.SnapshotCount = 5
			cfg.SnapshotCatchUpEntries = 2
		})
	})
}

func memberReplace(t *testing.T, tweak func(int, *member.Config)) {
	c := newCluster(t, 3, tweak)
	ctx := testCtx(t)
	leader := c.waitLeader(ctx)
	victim := (leader + 1) % 3
	cli := c.client(c.cfgs[leader].AdvertiseClientURLs[0])
	if _, err := cli.Put(ctx, "before", "1"); err != nil {
		t.Fatal(err)
	}
	id := c.members[victim].ID()
	if _, err := cli.MemberRemove(ctx, id); err != nil {
		t.Fatalf("remove: %v", err)
	}
	c.stop(victim)
	os.RemoveAll(c.cfgs[victim].DataDir)
	ml, err := cli.MemberList(ctx)
	if err != nil || len(ml.Members) != 2 {
		t.Fatalf("after remove: %+v, %v", ml, err)
	}
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(ctx, "during", "1"); err != nil {
			t.Fatal(err)
		}
	}
	ar, err := cli.MemberAdd(ctx, c.cfgs[victim].InitialAdvertisePeerURLs)
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	if ar.Member.ID == 0 || ar.Member.ID == id || len(ar.Members) != 3 {
		t.Errorf("add answered %+v", ar)
	}
	c.cfgs[victim].InitialClusterState = "existing"
	c.start(victim)
	if c.members[victim].ID() != ar.Member.ID {
		t.Fatalf("rejoined as %x, added as %x", c.members[victim].ID(), ar.Member.ID)
	}
	check := func() {
		t.Helper()
		vcli := c.client(c.cfgs[victim].AdvertiseClientURLs[0])
		for {
			gr, err := vcli.Get(ctx, "during")
			if err == nil && gr.Count == 1 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("rejoined member never caught up: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := vcli.Put(ctx, "after", "1"); err != nil {
			t.Fatalf("write through the rejoined member: %v", err)
		}
	}
	check()
	for {
		ml, err := cli.MemberList(ctx)
		named := 0
		if err == nil {
			for _, m := range ml.Members {
				if m.Name != "" && len(m.ClientURLs) > 0 {
					named++
				}
			}
		}
		if named == 3 && len(ml.Members) == 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("member list never complete: %+v", ml)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every member, the rejoined one included, restarts with its data.
	c.stopAll()
	for i := range c.cfgs {
		c.start(i)
	}
	c.waitLeader(ctx)
	check()
	gr, err := c.client().Get(ctx, "", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || gr.Count != 3 {
		t.Errorf("keys = %+v, %v", gr, err)
	}
}
