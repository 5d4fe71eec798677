package integration

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestPutGetDeleteTxn(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := testCtx(t)
	c.waitLeader(ctx)
	cli := c.client()

	pr, err := cli.Put(ctx, "a", "1")
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	// A fresh store is at revision 1, so the first write makes it 2.
	if pr.Header.Revision != 2 {
		t.Errorf("first put revision = %d, want 2", pr.Header.Revision)
	}
	if pr.Header.ClusterId == 0 || pr.Header.MemberId == 0 || pr.Header.RaftTerm == 0 {
		t.Errorf("incomplete header %+v", pr.Header)
	}
	if _, err := cli.Put(ctx, "a", "2"); err != nil {
		t.Fatal(err)
	}
	gr, err := cli.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != "2" || gr.Kvs[0].Version != 2 ||
		gr.Kvs[0].CreateRevision != 2 || gr.Kvs[0].ModRevision != 3 {
		t.Fatalf("get a = %+v", gr.Kvs)
	}
	old, err := cli.Get(ctx, "a", clientv3.WithRev(2))
	if err != nil || len(old.Kvs) != 1 || string(old.Kvs[0].Value) != "1" {
		t.Fatalf("get a@2 = %+v, %v", old, err)
	}
	sr, err := cli.Get(ctx, "a", clientv3.WithSerializable())
	if err != nil || sr.Count != 1 {
		t.Fatalf("serializable get = %+v, %v", sr, err)
	}

	tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("a"), "=", "2")).
		Then(clientv3.OpPut("a", "3"), clientv3.OpGet("a")).Else(clientv3.OpGet("a")).Commit()
	if err != nil || !tr.Succeeded {
		t.Fatalf("txn = %+v, %v", tr, err)
	}
	if got := string(tr.Responses[1].GetResponseRange().Kvs[0].Value); got != "3" {
		t.Errorf("read inside txn = %q, want own write 3", got)
	}
	tr, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("a"), "=", "2")).Then(clientv3.OpPut("a", "x")).Commit()
	if err != nil || tr.Succeeded {
		t.Fatalf("failing txn = %+v, %v", tr, err)
	}
	if tr.Header.Revision != 4 {
		t.Errorf("revision after failed txn = %d, want 4", tr.Header.Revision)
	}
	tr, err = cli.Txn(ctx).If(
		clientv3.Compare(clientv3.Version("a"), "=", 3),
		clientv3.Compare(clientv3.CreateRevision("a"), "=", 2),
		clientv3.Compare(clientv3.ModRevision("a"), "=", 4),
		clientv3.Compare(clientv3.Version("missing"), "=", 0),
	).Then(clientv3.OpPut("b", "1")).Commit()
	if err != nil || !tr.Succeeded {
		t.Fatalf("revision compares = %+v, %v", tr, err)
	}

	for _, k := range []string{"p/1", "p/2", "p/3"} {
		if _, err := cli.Put(ctx, k, k); err != nil {
			t.Fatal(err)
		}
	}
	pg, err := cli.Get(ctx, "p/", clientv3.WithPrefix(), clientv3.WithLimit(2))
	if err != nil || len(pg.Kvs) != 2 || pg.Count != 3 || !pg.More {
		t.Fatalf("prefix get with limit = %+v, %v", pg, err)
	}
	dr, err := cli.Delete(ctx, "p/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil || dr.Deleted != 3 || len(dr.PrevKvs) != 3 {
		t.Fatalf("delete prefix = %+v, %v", dr, err)
	}
	pg, err = cli.Get(ctx, "p/", clientv3.WithPrefix())
	if err != nil || pg.Count != 0 {
		t.Fatalf("after delete = %+v, %v", pg, err)
	}
	// Deleting nothing does not move the revision.
	before := dr.Header.Revision
	dr, err = cli.Delete(ctx, "nothing")
	if err != nil || dr.Header.Revision != before {
		t.Fatalf("empty delete = %+v, %v (revision before %d)", dr, err, before)
	}
}

func TestForwardedWrite(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := testCtx(t)
	leader := c.waitLeader(ctx)
	follower := (leader + 1) % 3
	cli := c.client(c.cfgs[follower].AdvertiseClientURLs[0])
	pr, err := cli.Put(ctx, "k", "v")
	if err != nil {
		t.Fatalf("put via follower: %v", err)
	}
	if pr.Header.MemberId != c.members[follower].ID() {
		t.Errorf("answered by %x, want the follower %x", pr.Header.MemberId, c.members[follower].ID())
	}
	tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("k"), "=", "v")).Then(clientv3.OpPut("k", "w")).Commit()
	if err != nil || !tr.Succeeded {
		t.Fatalf("txn via follower = %+v, %v", tr, err)
	}
	// A linearizable read from another follower sees it.
	other := c.client(c.cfgs[(leader+2)%3].AdvertiseClientURLs[0])
	gr, err := other.Get(ctx, "k")
	if err != nil || len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != "w" {
		t.Fatalf("read from other follower = %+v, %v", gr, err)
	}
}

func TestStatusAndMemberList(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := testCtx(t)
	leader := c.waitLeader(ctx)
	cli := c.client()
	for i, cfg := range c.cfgs {
		st, err := cli.Status(ctx, cfg.AdvertiseClientURLs[0])
		if err != nil {
			t.Fatal(err)
		}
		if st.Header.MemberId != c.members[i].ID() || st.Leader != c.members[leader].ID() || st.Version == "" || st.RaftTerm == 0 {
			t.Errorf("status of %d = %+v", i, st)
		}
	}
	// Members publish their client URLs through Raft shortly after start.
	for {
		ml, err := cli.MemberList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ok := len(ml.Members) == 3
		for _, m := range ml.Members {
			ok = ok && len(m.ClientURLs) == 1 && m.Name != ""
		}
		if ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("member list never complete: %+v", ml.Members)
		}
	}
}
