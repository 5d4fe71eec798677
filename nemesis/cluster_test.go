package nemesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
)

// upEtcd boots n etcd members in containers, or skips the test when no
// Docker engine answers (CI has one, so there it always runs).
func upEtcd(t *testing.T, n int) *compose.Cluster {
	return upEtcdWith(t, compose.Config{Nodes: n})
}

func upEtcdWith(t *testing.T, cfg compose.Config) *compose.Cluster {
	t.Helper()
	ctx := context.Background()
	docker, err := compose.NewDocker(ctx)
	if err != nil {
		t.Skipf("skipping: needs a Docker engine: %v", err)
	}
	t.Cleanup(func() { docker.Close() })
	wd, _ := os.Getwd()
	root, err := compose.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	target, err := compose.Etcd("")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := compose.Image(ctx, docker, root, target)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RunID, cfg.Target, cfg.Image = fmt.Sprintf("nemtest%d", time.Now().UnixNano()), target, ref
	return upped(t)(compose.Up(ctx, docker, cfg))
}

// upped fails the test when a cluster did not come up, and takes it down
// when the test ends.
func upped(t *testing.T) func(*compose.Cluster, error) *compose.Cluster {
	return func(c *compose.Cluster, err error) *compose.Cluster {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.Down(context.Background()); err != nil {
				t.Errorf("tearing down: %v", err)
			}
		})
		return c
	}
}

// settled heals what is left, waits for one leader with every member at
// the same applied index and revision, and checks nothing is left behind.
func settled(t *testing.T, ctx context.Context, c *compose.Cluster) {
	t.Helper()
	if _, err := Settle(ctx, c, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	left, err := Leftovers(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("left behind after heal: %v", left)
	}
}

// read gets a key from one member only, linearizable or serializable.
func read(ctx context.Context, c *compose.Cluster, m *compose.Member, serializable bool) error {
	cli, err := c.Client(m)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var opts []clientv3.OpOption
	if serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	_, err = cli.Get(ctx, "nemesis-test", opts...)
	return err
}

func put(ctx context.Context, c *compose.Cluster, ms ...*compose.Member) error {
	cli, err := c.Client(ms...)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = cli.Put(ctx, "nemesis-test", time.Now().String())
	return err
}

// writes waits (at most limit) for a put through ms to succeed. One put
// that timed out on a loaded machine, or in an election a fault set off,
// proves nothing; no write for the whole limit does.
func writes(ctx context.Context, c *compose.Cluster, limit time.Duration, ms ...*compose.Member) error {
	_, err := waitFor(ctx, limit, func() (bool, error) { err := put(ctx, c, ms...); return err == nil, err })
	return err
}

// leaderAmong waits until the given members agree on a leader among
// themselves, and returns it.
func leaderAmong(t *testing.T, ctx context.Context, c *compose.Cluster, ms []*compose.Member) *compose.Member {
	t.Helper()
	var leader *compose.Member
	_, err := waitFor(ctx, 30*time.Second, func() (bool, error) {
		leader = nil
		var claimed uint64
		for _, m := range ms {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := c.Status(sctx, m)
			cancel()
			if err != nil {
				return false, err
			}
			if st.Leader == 0 || (claimed != 0 && st.Leader != claimed) {
				return false, fmt.Errorf("%s sees leader %x, others %x", m.Name, st.Leader, claimed)
			}
			claimed = st.Leader
			if st.IsLeader() {
				leader = m
			}
		}
		return leader != nil, nil
	})
	if err != nil {
		t.Fatalf("no leader among %v: %v", compose.Names(ms), err)
	}
	return leader
}

// dropped returns the rules on m's links, sorted.
func dropped(t *testing.T, ctx context.Context, c *compose.Cluster, m *compose.Member) []string {
	t.Helper()
	ips, err := c.Links().Rules(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ips)
	return ips
}

func ipsOf(ms []*compose.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.IP)
	}
	slices.Sort(out)
	return out
}

// upLocal boots n members of target as local processes.
func upLocal(t *testing.T, target compose.Target, n int) *compose.Cluster {
	t.Helper()
	ctx := context.Background()
	wd, _ := os.Getwd()
	root, err := compose.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := compose.Binary(ctx, root, target)
	if err != nil {
		t.Fatal(err)
	}
	return upped(t)(compose.UpLocal(ctx, compose.Config{RunID: fmt.Sprintf("nemtest%d", time.Now().UnixNano()), Target: target, Binary: bin, Nodes: n}))
}

// TestFaultsOnEtcd applies every fault to one five-member etcd cluster in
// containers, in turn, and checks what each one does and that its heal
// leaves the cluster whole, with nothing behind.
func TestFaultsOnEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the container test in -short mode")
	}
	c := upEtcd(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	t.Run("agent", func(t *testing.T) {
		for _, m := range c.Members {
			if out, err := c.Exec(ctx, m, compose.AgentPath, "check"); err != nil {
				t.Fatalf("netfilter in %s: %v %s", m.Name, err, out)
			}
		}
	})
	testFaults(t, ctx, c)
}

// TestFaultsOnLocalKvnode applies the same faults to five kvnode members
// running as local processes, where the peer proxies make the partitions.
func TestFaultsOnLocalKvnode(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	c := upLocal(t, compose.Kvnode(), 5)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	testFaults(t, ctx, c)
}

// testFaults applies every fault to c, a five-member cluster, in turn.
func testFaults(t *testing.T, ctx context.Context, c *compose.Cluster) {

	t.Run("partition-leader", func(t *testing.T) {
		p := &Partition{kind: partLeader}
		hit, err := p.Start(ctx, c, testRand)
		if err != nil {
			t.Fatal(err)
		}
		old := hit[0]
		rest := without(c.Members, old)
		for _, m := range rest {
			if got := dropped(t, ctx, c, m); !slices.Equal(got, []string{old.IP}) {
				t.Errorf("%s drops %v, want only the old leader %s", m.Name, got, old.IP)
			}
		}
		if got := dropped(t, ctx, c, old); !slices.Equal(got, ipsOf(rest)) {
			t.Errorf("the old leader drops %v, want %v", got, ipsOf(rest))
		}
		nl := leaderAmong(t, ctx, c, rest)
		t.Logf("old leader %s isolated, new leader %s", old.Name, nl.Name)
		if err := writes(ctx, c, 20*time.Second, rest...); err != nil {
			t.Errorf("the majority does not take writes: %v", err)
		}
		if err := read(ctx, c, old, false); err == nil {
			t.Error("a linearizable read from the isolated old leader answered")
		} else {
			t.Logf("linearizable read from %s: %v", old.Name, err)
		}
		if err := read(ctx, c, old, true); err != nil {
			t.Errorf("a serializable read from the isolated old leader failed: %v", err)
		}
		if err := p.Heal(ctx, c); err != nil {
			t.Fatal(err)
		}
		settled(t, ctx, c)
	})

	// partition-member aims at one member: a follower, so the leader stays
	// and the majority writes on, then one by name. Clients still reach
	// the member cut off, which answers only from what it has.
	t.Run("partition-member", func(t *testing.T) {
		for _, aim := range []string{"follower", "n2"} {
			fs, err := Parse("partition-member=" + aim)
			if err != nil {
				t.Fatal(err)
			}
			l, err := findLeader(ctx, c, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			hit, err := fs[0].Start(ctx, c, testRand)
			if err != nil {
				t.Fatal(err)
			}
			one := hit[0]
			if len(hit) != 1 || (aim == "follower" && one == l) || (aim == "n2" && one.Name != "n2") {
				t.Fatalf("%s hit %v (leader %s)", fs[0].Name(), compose.Names(hit), l.Name)
			}
			rest := without(c.Members, one)
			if got := dropped(t, ctx, c, one); !slices.Equal(got, ipsOf(rest)) {
				t.Errorf("%s: %s drops %v, want %v", fs[0].Name(), one.Name, got, ipsOf(rest))
			}
			for _, m := range rest {
				if got := dropped(t, ctx, c, m); !slices.Equal(got, []string{one.IP}) {
					t.Errorf("%s: %s drops %v, want only %s", fs[0].Name(), m.Name, got, one.IP)
				}
			}
			if aim == "follower" {
				if err := writes(ctx, c, 20*time.Second, rest...); err != nil {
					t.Errorf("the majority does not take writes: %v", err)
				}
				if err := read(ctx, c, one, true); err != nil {
					t.Errorf("a serializable read from the cut-off %s failed: %v", one.Name, err)
				}
				if _, err := waitFor(ctx, 10*time.Second, func() (bool, error) { return read(ctx, c, one, false) != nil, nil }); err != nil {
					t.Errorf("linearizable reads from the cut-off %s still answer", one.Name)
				}
			}
			if err := fs[0].Heal(ctx, c); err != nil {
				t.Fatal(err)
			}
			settled(t, ctx, c)
		}
	})

	t.Run("partition-halves", func(t *testing.T) {
		p := &Partition{kind: partHalves}
		minority, err := p.Start(ctx, c, testRand)
		if err != nil {
			t.Fatal(err)
		}
		if len(minority) != 2 {
			t.Fatalf("minority %v of 5", compose.Names(minority))
		}
		leaderAmong(t, ctx, c, without(c.Members, minority...))
		for _, m := range minority {
			if got, want := dropped(t, ctx, c, m), ipsOf(without(c.Members, minority...)); !slices.Equal(got, want) {
				t.Errorf("%s drops %v, want the majority %v", m.Name, got, want)
			}
		}
		// The minority cannot commit: once it notices (an election timeout
		// at most), its linearizable reads fail.
		_, err = waitFor(ctx, 10*time.Second, func() (bool, error) {
			return read(ctx, c, minority[0], false) != nil, nil
		})
		if err != nil {
			t.Errorf("linearizable reads from the minority member %s still answer", minority[0].Name)
		}
		if err := p.Heal(ctx, c); err != nil {
			t.Fatal(err)
		}
		settled(t, ctx, c)
	})

	t.Run("partition-majorities-ring", func(t *testing.T) {
		p := &Partition{kind: partRing}
		order, err := p.Start(ctx, c, testRand)
		if err != nil {
			t.Fatal(err)
		}
		views := map[string]bool{}
		for i, m := range order {
			// On a ring of five each member hears its two neighbours and
			// drops the two members across.
			want := ipsOf([]*compose.Member{order[(i+2)%5], order[(i+3)%5]})
			got := dropped(t, ctx, c, m)
			if !slices.Equal(got, want) {
				t.Errorf("%s drops %v, want %v", m.Name, got, want)
			}
			views[fmt.Sprint(got)] = true
		}
		if len(views) != 5 {
			t.Errorf("%d distinct views among 5 members", len(views))
		}
		if err := p.Heal(ctx, c); err != nil {
			t.Fatal(err)
		}
		settled(t, ctx, c)
	})

	t.Run("partition-bridge", func(t *testing.T) {
		p := &Partition{kind: partBridge}
		hit, err := p.Start(ctx, c, testRand)
		if err != nil {
			t.Fatal(err)
		}
		b := hit[0]
		if got := dropped(t, ctx, c, b); len(got) != 0 {
			t.Errorf("the bridge %s drops %v", b.Name, got)
		}
		for _, m := range without(c.Members, b) {
			if got := dropped(t, ctx, c, m); len(got) != 2 {
				t.Errorf("%s drops %v, want the other half's two members", m.Name, got)
			}
		}
		// Each half and the bridge make a majority: the cluster keeps (or
		// soon finds) a leader and takes writes.
		if err := writes(ctx, c, 20*time.Second); err != nil {
			t.Errorf("no writes through the bridge: %v", err)
		}
		if err := p.Heal(ctx, c); err != nil {
			t.Fatal(err)
		}
		settled(t, ctx, c)
	})

	t.Run("pause-leader", func(t *testing.T) {
		p := pause(pickLeader)
		hit, err := p.Start(ctx, c, testRand)
		if err != nil {
			t.Fatal(err)
		}
		old := hit[0]
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		_, err = c.Status(sctx, old)
		scancel()
		if err == nil {
			t.Error("the paused leader answered a status call")
		}
		if err := read(ctx, c, old, true); err == nil {
			t.Error("the paused leader answered a serializable read")
		}
		nl := leaderAmong(t, ctx, c, without(c.Members, old))
		t.Logf("paused %s, new leader %s", old.Name, nl.Name)
		if err := p.Heal(ctx, c); err != nil {
			t.Fatal(err)
		}
		settled(t, ctx, c)
	})

	t.Run("kill-minority", func(t *testing.T) {
		k := kill(pickMinority)
		hit, err := k.Start(ctx, c, testRand)
		if err != nil {
			t.Fatal(err)
		}
		if len(hit) != 2 {
			t.Fatalf("killed %v, want 2 of 5", compose.Names(hit))
		}
		for _, m := range hit {
			if running, _, err := c.State(ctx, m); err != nil || running {
				t.Errorf("%s still running after kill (%v)", m.Name, err)
			}
		}
		leaderAmong(t, ctx, c, without(c.Members, hit...))
		if err := writes(ctx, c, 20*time.Second, without(c.Members, hit...)...); err != nil {
			t.Errorf("the surviving majority takes no writes: %v", err)
		}
		if err := k.Heal(ctx, c); err != nil {
			t.Fatal(err)
		}
		settled(t, ctx, c)
	})

	t.Run("kill-all", func(t *testing.T) {
		k := kill(pickAll)
		if _, err := k.Start(ctx, c, testRand); err != nil {
			t.Fatal(err)
		}
		for _, m := range c.Members {
			if err := read(ctx, c, m, true); err == nil {
				t.Errorf("%s answered after kill-all", m.Name)
			}
		}
		if err := k.Heal(ctx, c); err != nil {
			t.Fatal(err)
		}
		settled(t, ctx, c)
	})

	t.Run("peer-loss", func(t *testing.T) {
		p := &PeerLoss{}
		_, err := p.Start(ctx, c, testRand)
		if c.Runtime == compose.Local {
			if !errors.Is(err, compose.ErrLocalLoss) {
				t.Errorf("peer-loss on local members: %v, want %v", err, compose.ErrLocalLoss)
			}
			if err := p.Heal(ctx, c); err != nil {
				t.Fatal(err)
			}
			settled(t, ctx, c)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		a, b := c.Members[0], c.Members[1]
		if got := dropped(t, ctx, c, a); len(got) != 4 || !slices.Contains(got, fmt.Sprintf("%s %d%%", b.IP, DefaultPeerLoss)) {
			t.Errorf("%s's rules %v, want %d%% of each of the 4 others", a.Name, got, DefaultPeerLoss)
		}
		// A connection needs its SYN through b's rule and the SYN-ACK
		// through a's: most, not all, make it at the first try.
		out, err := c.Exec(ctx, a, compose.AgentPath, "probe", b.IP+":2380", "60")
		if err != nil {
			t.Fatal(err)
		}
		var ok, tries int
		if _, err := fmt.Sscanf(out, "%d/%d", &ok, &tries); err != nil {
			t.Fatalf("probe said %q", out)
		}
		t.Logf("%d of %d connections from %s to %s got through", ok, tries, a.Name, b.Name)
		if ok == 0 || ok >= tries*9/10 {
			t.Errorf("%d of %d connections got through %d%% loss each way", ok, tries, DefaultPeerLoss)
		}
		// The cluster keeps working over lossy links, if slowly: TCP
		// backs off on every lost segment, and a heartbeat held up long
		// enough starts an election: etcd has gone 9 s between two writes
		// here at 20% loss, 13 s at 30%.
		if err := writes(ctx, c, time.Minute); err != nil {
			t.Errorf("no writes over lossy links: %v", err)
		}
		if err := p.Heal(ctx, c); err != nil {
			t.Fatal(err)
		}
		settled(t, ctx, c)
		if out, err := c.Exec(ctx, a, compose.AgentPath, "probe", b.IP+":2380", "20"); err != nil || out != "20/20\r\n" && out != "20/20\n" {
			t.Errorf("after heal: %q %v, want every connection through", out, err)
		}
	})

	t.Run("compact", func(t *testing.T) {
		// Twenty revisions to compact. The fault before may have left an
		// election behind it, and a loaded machine slows etcd down: a put
		// that timed out is tried again rather than failing the test.
		for range 20 {
			if err := writes(ctx, c, 20*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := (&Compact{Keep: 5}).Start(ctx, c, testRand); err != nil {
			t.Fatal(err)
		}
		cli, err := c.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		_, err = cli.Get(ctx, "nemesis-test", clientv3.WithRev(2))
		if err == nil || !strings.Contains(err.Error(), "compacted") {
			t.Errorf("reading revision 2 after the compaction: %v, want compacted", err)
		}
		settled(t, ctx, c)
	})

	t.Run("defrag", func(t *testing.T) {
		if _, err := (&Defrag{}).Start(ctx, c, testRand); err != nil {
			t.Fatal(err)
		}
		settled(t, ctx, c)
	})

	t.Run("member-replace", func(t *testing.T) {
		r := &MemberReplace{}
		before := map[string]string{}
		for _, m := range c.Members {
			before[m.Name] = m.Instance
		}
		hit, err := r.Start(ctx, c, testRand)
		if err != nil {
			t.Fatal(err)
		}
		m := hit[0]
		defer func() {
			if m.Instance == before[m.Name] || m.Instance == "" {
				t.Errorf("%s was not replaced by a new instance (%s before, %s after)", m.Name, before[m.Name], m.Instance)
			}
		}()
		cli, err := c.Client(without(c.Members, m)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		list, err := cli.MemberList(ctx)
		if err != nil || len(list.Members) != 4 {
			t.Fatalf("after removing %s: %d members, %v", m.Name, len(list.Members), err)
		}
		if err := writes(ctx, c, 20*time.Second, without(c.Members, m)...); err != nil {
			t.Errorf("four members take no writes: %v", err)
		}
		if err := r.Heal(ctx, c); err != nil {
			t.Fatal(err)
		}
		settled(t, ctx, c)
		list, err = cli.MemberList(ctx)
		if err != nil || len(list.Members) != 5 {
			t.Fatalf("after adding %s back: %d members, %v", m.Name, len(list.Members), err)
		}
	})

	// An interrupted run (Ctrl-C) heals the fault it is in before Run
	// returns, and records the stop.
	t.Run("interrupted", func(t *testing.T) {
		var buf bytes.Buffer
		n := &Nemesis{Schedule: Turns([]Fault{&Partition{kind: partRandom}, pause(pickRandom)}, 100*time.Millisecond, time.Minute),
			Cluster: c, Recorder: history.NewRecorder(&buf)}
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { n.Run(rctx); close(done) }()
		_, err := waitFor(ctx, 20*time.Second, func() (bool, error) { return n.Count() == 1, nil })
		if err != nil {
			t.Fatal("the fault never started")
		}
		rcancel()
		<-done
		left, err := Leftovers(ctx, c)
		if err != nil || len(left) > 0 {
			t.Fatalf("left behind after an interrupted run: %v %v", left, err)
		}
		events, err := history.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if ws := history.Faults(events); len(ws) != 1 || ws[0].Stop < 0 {
			t.Fatalf("windows %+v, want one, closed", ws)
		}
		settled(t, ctx, c)
	})
}

// TestPeerLatencyOnEtcd runs three etcd members behind the agent's peer
// proxy: they form a cluster through it, survive a kill and restart, and
// while peer-latency holds traffic back no write commits sooner than the
// delay allows.
func TestPeerLatencyOnEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the container test in -short mode")
	}
	testPeerLatency(t, upEtcdWith(t, compose.Config{Nodes: 3, PeerProxy: true}))
}

// TestPeerLatencyOnLocalKvnode slows the links of three local kvnode
// members through their peer proxies.
func TestPeerLatencyOnLocalKvnode(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	testPeerLatency(t, upLocal(t, compose.Kvnode(), 3))
}

func testPeerLatency(t *testing.T, c *compose.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := writes(ctx, c, 20*time.Second); err != nil {
		t.Fatalf("no writes through the proxies: %v", err)
	}

	const delay = 150 * time.Millisecond
	p := &PeerLatency{Delay: delay}
	if _, err := p.Start(ctx, c, testRand); err != nil {
		t.Fatal(err)
	}
	if c.Runtime == compose.Docker && p.netem != "netem: absent" && p.netem != "netem: present" {
		t.Errorf("the agent's netem probe said %q", p.netem)
	}
	t.Logf("kernel: %s; mechanism: %s", p.netem, PeerLatencyMechanism)
	for _, m := range c.Members {
		if got := dropped(t, ctx, c, m); !slices.Equal(got, []string{"delay 150ms jitter 0s"}) {
			t.Errorf("%s's agent says %v", m.Name, got)
		}
	}
	// A write commits when a follower has the entry and the leader knows:
	// the append crosses one proxy, the answer another.
	for range 3 {
		start := time.Now()
		if err := put(ctx, c); err != nil {
			t.Fatalf("write over slow links: %v", err)
		}
		if took := time.Since(start); took < 2*delay {
			t.Errorf("a write committed in %s over links that hold every message %s", took, delay)
		}
	}
	if err := p.Heal(ctx, c); err != nil {
		t.Fatal(err)
	}
	settled(t, ctx, c)

	k := kill(pickRandom)
	if _, err := k.Start(ctx, c, testRand); err != nil {
		t.Fatal(err)
	}
	if err := k.Heal(ctx, c); err != nil {
		t.Fatal(err)
	}
	settled(t, ctx, c)
}
