package compose

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/faultline/faultline/failpoint"
)

// The source of etcd's server module at a release is where its failpoints
// are: v3.6.16 declares 43 (research/gofail.md counted them by grep),
// raftBeforeSave among them, in the raft loop.
func TestEtcdServerSourceFailpoints(t *testing.T) {
	dir, err := EtcdServerSource(context.Background(), "v3.6.16")
	if err != nil {
		t.Fatal(err)
	}
	points, err := failpoint.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) != 43 {
		t.Errorf("etcd v3.6.16 has %d failpoints, want 43", len(points))
	}
	found := false
	for _, p := range points {
		if p.Name == "raftBeforeSave" {
			found = p.File == "etcdserver/raft.go" && p.Type == "struct{}"
		}
	}
	if !found {
		t.Errorf("no raftBeforeSave struct{} in etcdserver/raft.go among %v", points)
	}
	if _, err := EtcdServerSource(context.Background(), "3.6.16"); err == nil {
		t.Error("EtcdServerSource accepted version 3.6.16, which has no leading v")
	}
}

// gofail enable is given each directory that holds a point once, and a
// name declared twice (a panic at the binary's init) is refused.
func TestFailpointDirs(t *testing.T) {
	points := []failpoint.Point{
		{Name: "a", File: "etcdserver/raft.go"},
		{Name: "b", File: "etcdserver/server.go"},
		{Name: "c", File: "storage/wal/wal.go"},
		{Name: "d", File: "top.go"},
	}
	got, err := failpointDirs(points)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"./.", "./etcdserver", "./storage/wal"}; !slices.Equal(got, want) {
		t.Errorf("dirs %q, want %q", got, want)
	}
	_, err = failpointDirs(append(points, failpoint.Point{Name: "a", File: "lease/lessor.go"}))
	if err == nil || !strings.Contains(err.Error(), "failpoint a is declared twice, in etcdserver/raft.go and lease/lessor.go") {
		t.Errorf("a name declared twice: %v, want an error naming both files", err)
	}
}

// The failpoint build of v3.6.16 registers every point its source
// declares: its GOFAIL_HTTP endpoint lists exactly those names, and arms
// and disarms one of them.
func TestFailpointBinary(t *testing.T) {
	ctx, root := failpointBuildTest(t)
	bin, err := FailpointBinary(ctx, root, "v3.6.16")
	if err != nil {
		t.Fatal(err)
	}
	src, err := EtcdServerSource(ctx, "v3.6.16")
	if err != nil {
		t.Fatal(err)
	}
	checkFailpointServer(ctx, t, bin, src)
}

// kvnode's failpoint build answers GOFAIL_HTTP as etcd's does, with the
// points its store declares.
func TestKvnodeFailpointBinary(t *testing.T) {
	ctx, root := failpointBuildTest(t)
	bin, err := Binary(ctx, root, KvnodeFailpoints())
	if err != nil {
		t.Fatal(err)
	}
	checkFailpointServer(ctx, t, bin, filepath.Join(root, "store"))
}

// failpointBuildTest skips in -short mode (a build of the whole server)
// and returns a context for the build and the checkout's root.
func failpointBuildTest(t *testing.T) (context.Context, string) {
	if testing.Short() {
		t.Skip("skipping a failpoint build in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, root
}

// checkFailpointServer starts bin as a one-member cluster with GOFAIL_HTTP
// and checks that it lists exactly the points declared under src, and
// arms and disarms raftBeforeSave.
func checkFailpointServer(ctx context.Context, t *testing.T, bin, src string) {
	t.Helper()
	points, err := failpoint.Scan(src)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range points {
		want = append(want, p.Name+"=")
	}

	urls := freeURLs(t, 3)
	client, peer, fp := urls[0], urls[1], urls[2]
	cmd := exec.CommandContext(ctx, bin,
		"--name", "m1", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "m1="+peer)
	gofail := strings.TrimPrefix(fp, "http://")
	cmd.Env = append(os.Environ(), "GOFAIL_HTTP="+gofail)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("the server's output:\n%s", logs.Bytes())
		}
	}()

	ep := failpoint.Endpoint{URL: fp}
	var listed map[string]string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		listed, err = ep.List(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOFAIL_HTTP at %s never answered GET /: %v", gofail, err)
		}
	}
	var got []string
	for name, term := range listed {
		got = append(got, name+"="+term)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("GET / lists %d failpoints: %v\nwant the %d of the source: %v", len(got), got, len(want), want)
	}
	// A sleep under write traffic runs, and is counted: the nemesis tells
	// a failpoint that fired from one that never did by this count.
	if err := ep.Arm(ctx, "raftBeforeSave", `sleep(10)`); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for i := range 3 {
		if _, err := cli.Put(ctx, "k", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := ep.Count(ctx, "raftBeforeSave"); err != nil || n < 3 {
		t.Errorf("raftBeforeSave ran %d times over 3 writes (%v), want 3 or more", n, err)
	}
	if err := ep.Disarm(ctx, "raftBeforeSave"); err != nil {
		t.Error(err)
	}
	if _, err := ep.Count(ctx, "raftBeforeSave"); !errors.Is(err, failpoint.ErrUnknown) {
		t.Errorf("count of a disarmed failpoint: %v, want ErrUnknown", err)
	}
	if err := ep.Disarm(ctx, "raftBeforeSave"); err != nil {
		t.Errorf("disarming twice: %v, want no error", err)
	}
}

// freeURLs returns n distinct http://127.0.0.1:PORT URLs no one listened
// on a moment ago. The listeners are held until all n are picked: closed
// one by one, the kernel may hand the same port out twice.
func freeURLs(t *testing.T, n int) []string {
	var urls []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		urls = append(urls, "http://"+l.Addr().String())
	}
	return urls
}
