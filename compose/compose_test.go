package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
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

// etcdImage builds the image of etcd at version ("" for the default), or
// finds it built.
func etcdImage(t *testing.T, cli *client.Client, version string) (Target, string) {
	t.Helper()
	wd, _ := os.Getwd()
	root, err := FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	target, err := Etcd(version)
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
	target, ref := etcdImage(t, cli, "")
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

// TestEtcdReleases builds an older and a newer etcd release than the
// default and boots one member of each: it must say it runs exactly the
// release asked for. A target that claims another release than its image
// holds is refused at boot. The first run builds both (minutes); later
// runs find the images.
func TestEtcdReleases(t *testing.T) {
	cli := docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	images := map[string]string{}
	for _, version := range []string{"v3.5.7", "v3.7.3"} {
		target, ref := etcdImage(t, cli, version)
		images[version] = ref
		c, err := Up(ctx, cli, Config{RunID: fmt.Sprintf("test%d", time.Now().UnixNano()), Target: target, Image: ref, Nodes: 1})
		if err != nil {
			t.Fatalf("etcd %s: %v", version, err)
		}
		st, err := c.Status(ctx, c.Members[0])
		c.Down(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimPrefix(version, "v"); st.Version != want {
			t.Errorf("the image of etcd %s runs %s", version, st.Version)
		}
	}

	claim, err := Etcd("v3.5.7")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Up(ctx, cli, Config{RunID: fmt.Sprintf("test%d", time.Now().UnixNano()), Target: claim, Image: images["v3.7.3"], Nodes: 1})
	if err == nil {
		c.Down(context.Background())
		t.Fatal("a v3.5.7 cluster of etcd 3.7.3 became ready")
	}
	if !errors.Is(err, errWrongRelease) || !strings.Contains(err.Error(), `"3.7.3"`) || !strings.Contains(err.Error(), "v3.5.7") {
		t.Errorf("a v3.5.7 cluster of etcd 3.7.3: %v, want errWrongRelease naming both", err)
	}
}
