package integration

import (
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Bad input gets etcd's error, and nothing is applied.
func TestBadInput(t *testing.T) {
	c := newCluster(t, 1, nil)
	ctx := testCtx(t)
	c.waitLeader(ctx)
	cli := c.client()
	pr, err := cli.Put(ctx, "a", "1")
	if err != nil {
		t.Fatal(err)
	}
	rev := pr.Header.Revision

	many := make([]clientv3.Op, 129)
	for i := range many {
		many[i] = clientv3.OpPut(string(rune('a'+i%26))+strings.Repeat("x", i), "v")
	}
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"empty key put", func() error { _, err := cli.Put(ctx, "", "v"); return err }, rpctypes.ErrEmptyKey},
		{"empty key get", func() error { _, err := cli.Get(ctx, ""); return err }, rpctypes.ErrEmptyKey},
		{"too large", func() error { _, err := cli.Put(ctx, "big", strings.Repeat("x", 1600*1024)); return err }, rpctypes.ErrRequestTooLarge},
		{"future revision", func() error { _, err := cli.Get(ctx, "a", clientv3.WithRev(rev+100)); return err }, rpctypes.ErrFutureRev},
		{"unknown lease", func() error { _, err := cli.Put(ctx, "l", "v", clientv3.WithLease(12345)); return err }, rpctypes.ErrLeaseNotFound},
		{"too many ops", func() error { _, err := cli.Txn(ctx).Then(many...).Commit(); return err }, rpctypes.ErrTooManyOps},
		{"duplicate key", func() error {
			_, err := cli.Txn(ctx).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
		{"ignore value on missing key", func() error { _, err := cli.Put(ctx, "nokey", "", clientv3.WithIgnoreValue()); return err }, rpctypes.ErrKeyNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); err != tt.want {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	gr, err := cli.Get(ctx, "a")
	if err != nil || gr.Header.Revision != rev {
		t.Errorf("rejected requests moved the revision: %d -> %v (%v)", rev, gr.Header.Revision, err)
	}
	if _, err := cli.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx, "a", clientv3.WithRev(rev-1)); err != rpctypes.ErrCompacted {
		t.Errorf("read below compaction: %v", err)
	}
}

func TestMoveLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := testCtx(t)
	leader := c.waitLeader(ctx)
	target := (leader + 1) % 3
	cli := c.client(c.cfgs[leader].AdvertiseClientURLs[0])
	if _, err := cli.MoveLeader(ctx, c.members[target].ID()); err != nil {
		t.Fatal(err)
	}
	if got := c.waitLeader(ctx); got != target {
		t.Errorf("leader is %d, want %d", got, target)
	}
	if _, err := c.client(c.cfgs[leader].AdvertiseClientURLs[0]).MoveLeader(ctx, c.members[leader].ID()); err != rpctypes.ErrNotLeader {
		t.Errorf("move leader on a follower: %v", err)
	}
}
