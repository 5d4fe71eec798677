package compose

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// docker returns a client for the engine, or skips the test when there is
// none: CI has one, so there these tests always run.
func docker(t *testing.T) *client.Client {
	t.Helper()
	cli, err := NewDocker(context.Background())
	if err != nil {
		t.Skipf("skipping: needs a Docker engine: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func etcdImage(t *testing.T, cli *client.Client) (Target, string) {
	t.Helper()
	wd, _ := os.Getwd()
	root, err := FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	target, err := Etcd("")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Image(context.Background(), cli, root, target)
	if err != nil {
		t.Fatal(err)
	}
	return target, ref
}

// TestKillLeaderAndRestart boots three etcd members, kills the leader,
// sees another member take over, restarts the old leader with its data
// and checks that Down leaves nothing of the run behind.
func TestKillLeaderAndRestart(t *testing.T) {
	cli := docker(t)
	target, ref := etcdImage(t, cli)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	runID := fmt.Sprintf("test%d", time.Now().UnixNano())
	c, err := Up(ctx, cli, Config{RunID: runID, Target: target, Image: ref, Nodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Down(context.Background())

	etcd, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	if _, err := etcd.Put(ctx, "k", "before"); err != nil {
		t.Fatal(err)
	}

	old, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(ctx, old); err != nil {
		t.Fatal(err)
	}
	if up, _, err := c.State(ctx, old); err != nil || up {
		t.Fatalf("killed leader %s still running (err %v)", old.Name, err)
	}
	var next *Member
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if next, err = c.Leader(ctx); err == nil {
			break
		}
	}
	if next == nil || next == old {
		t.Fatalf("no new leader after killing %s: %v", old.Name, err)
	}

	if err := c.Start(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// The restarted member kept its data: it serves the key on its own.
	one, err := c.Client(old)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	got, err := one.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "before" {
		t.Fatalf("restarted %s reads k = %v, want \"before\"", old.Name, got.Kvs)
	}

	dir := t.TempDir()
	if err := c.SaveLogs(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dir + "/" + old.Name + ".log"); err != nil || len(b) == 0 {
		t.Fatalf("log of %s: %d bytes, err %v", old.Name, len(b), err)
	}

	if err := c.Down(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := CleanCount(ctx, cli, runID)
	if err != nil {
		t.Fatal(err)
	}
	if left != (Removed{}) {
		t.Fatalf("Down left %+v behind", left)
	}
}
