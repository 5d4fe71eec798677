package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/faultline/faultline/store/member"
)

// freePorts reserves n loopback ports. The OS may hand one out again before
// a member binds it; that is rare enough for tests.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// cluster is n in-process members on loopback.
type cluster struct {
	t       *testing.T
	cfgs    []member.Config
	members []*member.Member
}

func newCluster(t *testing.T, n int, tweak func(i int, c *member.Config)) *cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	var initial []string
	for i := 0; i < n; i++ {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[2*i+1]))
	}
	c := &cluster{t: t}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("KVNODE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	for i := 0; i < n; i++ {
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		cfg := member.Config{
			Name:                     fmt.Sprintf("m%d", i),
			DataDir:                  t.TempDir(),
			ListenClientURLs:         []string{client},
			AdvertiseClientURLs:      []string{client},
			ListenPeerURLs:           []string{peer},
			InitialAdvertisePeerURLs: []string{peer},
			InitialCluster:           strings.Join(initial, ","),
			InitialClusterState:      "new",
			InitialClusterToken:      "test",
			SnapshotCount:            10000,
			HeartbeatInterval:        20 * time.Millisecond,
			ElectionTimeout:          200 * time.Millisecond,
			Logger:                   log,
		}
		if tweak != nil {
			tweak(i, &cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
	}
	c.members = make([]*member.Member, n)
	for i := range c.cfgs {
		c.start(i)
	}
	t.Cleanup(c.stopAll)
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (c *cluster) start(i int) {
	c.t.Helper()
	m, err := member.Start(context.Background(), c.cfgs[i])
	if err != nil {
		c.t.Fatalf("start member %d: %v", i, err)
	}
	c.members[i] = m
}

func (c *cluster) stop(i int) {
	if c.members[i] != nil {
		c.members[i].Stop()
		c.members[i] = nil
	}
}

func (c *cluster) stopAll() {
	for i := range c.members {
		c.stop(i)
	}
}

func (c *cluster) endpoints() []string {
	var eps []string
	for _, cfg := range c.cfgs {
		eps = append(eps, cfg.AdvertiseClientURLs...)
	}
	return eps
}

func (c *cluster) client(eps ...string) *clientv3.Client {
	c.t.Helper()
	if len(eps) == 0 {
		eps = c.endpoints()
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// waitLeader polls Status on every running member until all agree on a
// leader, the way the harness does, and returns its index.
func (c *cluster) waitLeader(ctx context.Context) int {
	c.t.Helper()
	for {
		leader := -1
		agree := true
		var lead uint64
		for i, m := range c.members {
			if m == nil {
				continue
			}
			cli := c.client(c.cfgs[i].AdvertiseClientURLs[0])
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := cli.Status(sctx, c.cfgs[i].AdvertiseClientURLs[0])
			cancel()
			cli.Close()
			if err != nil || st.Leader == 0 || (lead != 0 && st.Leader != lead) {
				agree = false
				break
			}
			lead = st.Leader
			if st.Leader == st.Header.MemberId {
				leader = i
			}
		}
		if agree && leader >= 0 {
			return leader
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("no leader: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
