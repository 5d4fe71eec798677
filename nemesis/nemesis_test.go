package nemesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
)

// testRand is the source of the faults' picks in tests that start faults
// themselves.
var testRand = rand.New(rand.NewPCG(1, 2))

// fakeCluster has a leader that moves to the next member when killed or
// paused, and remembers the rules on its links.
type fakeCluster struct {
	mu      sync.Mutex
	members []*compose.Member
	leader  int
	down    map[string]bool
	paused  map[string]bool
	rules   map[string][]string
	log     []string
	// lag is its SnapshotLag, applied each member's applied index.
	lag     uint64
	applied map[string]uint64
	// logs are what each member printed.
	logs map[string]string
}

func newFake(n int) *fakeCluster {
	f := &fakeCluster{down: map[string]bool{}, paused: map[string]bool{}, rules: map[string][]string{}, applied: map[string]uint64{}, logs: map[string]string{}}
	for _, name := range memberNames(n) {
		f.members = append(f.members, &compose.Member{Name: name, IP: "10.0.0." + name[1:], Instance: "ctr-" + name})
	}
	return f
}

func (f *fakeCluster) List() []*compose.Member { return f.members }

func (f *fakeCluster) Leader(context.Context) (*compose.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.members[f.leader].Name
	if f.down[l] || f.paused[l] {
		return nil, errors.New("electing")
	}
	return f.members[f.leader], nil
}

func (f *fakeCluster) Status(_ context.Context, m *compose.Member) (compose.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[m.Name] || f.paused[m.Name] {
		return compose.Status{}, errors.New("no answer")
	}
	return compose.Status{Member: m, ID: uint64(slices.Index(f.members, m) + 1), Leader: uint64(f.leader + 1), AppliedIndex: f.applied[m.Name]}, nil
}

func (f *fakeCluster) record(s string) {
	f.log = append(f.log, s)
}

func (f *fakeCluster) Kill(_ context.Context, m *compose.Member) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[m.Name] = true
	f.record("kill " + m.Name)
	if f.members[f.leader] == m {
		f.leader = (f.leader + 1) % len(f.members)
	}
	return nil
}

func (f *fakeCluster) Start(_ context.Context, m *compose.Member) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.down, m.Name)
	delete(f.rules, m.Name) // a restarted container has a fresh namespace
	f.record("start " + m.Name)
	return nil
}

func (f *fakeCluster) Pause(_ context.Context, m *compose.Member) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused[m.Name] = true
	f.record("pause " + m.Name)
	if f.members[f.leader] == m {
		f.leader = (f.leader + 1) % len(f.members)
	}
	return nil
}

func (f *fakeCluster) Unpause(_ context.Context, m *compose.Member) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.paused, m.Name)
	f.record("unpause " + m.Name)
	return nil
}

func (f *fakeCluster) State(_ context.Context, m *compose.Member) (bool, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.down[m.Name], f.paused[m.Name], nil
}

func (f *fakeCluster) Links() compose.Links { return &fakeLinks{f: f} }

// fakeLinks keeps the rules as the agent lists them, and, as the agent
// would, fails on a member that is not running.
type fakeLinks struct {
	// Links is nil: a method the fake does not have panics in the test
	// that calls it, so only such a test needs to add it here.
	compose.Links
	f *fakeCluster
}

// reach fails on a member that is not running; l.f.mu is held.
func (l *fakeLinks) reach(m *compose.Member) error {
	if l.f.down[m.Name] || l.f.paused[m.Name] {
		return errors.New(m.Name + " is not running")
	}
	return nil
}

func (l *fakeLinks) set(m *compose.Member, rules []string) error {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	if err := l.reach(m); err != nil {
		return err
	}
	if rules == nil {
		delete(l.f.rules, m.Name)
	} else {
		l.f.rules[m.Name] = rules
	}
	return nil
}

func (l *fakeLinks) Drop(_ context.Context, m *compose.Member, loss int, from ...*compose.Member) error {
	rules := []string{}
	for _, o := range from {
		if loss < 100 {
			rules = append(rules, fmt.Sprintf("%s %d%%", o.IP, loss))
		} else {
			rules = append(rules, o.IP)
		}
	}
	return l.set(m, rules)
}

func (l *fakeLinks) Delay(_ context.Context, m *compose.Member, d, j time.Duration) error {
	return l.set(m, []string{fmt.Sprintf("delay %s jitter %s", d, j)})
}

func (l *fakeLinks) Heal(_ context.Context, m *compose.Member) error { return l.set(m, nil) }

func (l *fakeLinks) Rules(_ context.Context, m *compose.Member) ([]string, error) {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	return l.f.rules[m.Name], l.reach(m)
}

func (*fakeLinks) Netem(context.Context, *compose.Member) (string, error) { return "netem: fake", nil }
func (*fakeLinks) Cuts() string                                           { return "the fake's rules" }

// Disks of the fake cut power and damage as a kill does, and remember
// slow and failing disks among the rules.
func (f *fakeCluster) Disks() (compose.Disks, error) { return &fakeDisks{f: f}, nil }
func (f *fakeCluster) SnapshotLag() uint64           { return f.lag }

func (f *fakeCluster) Log(_ context.Context, m *compose.Member) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []byte(f.logs[m.Name]), nil
}

type fakeDisks struct{ f *fakeCluster }

func (d *fakeDisks) PowerLoss(ctx context.Context, m *compose.Member) (string, error) {
	d.f.record("power-loss " + m.Name)
	return "dropped 4.0 KiB unsynced in 1 file", d.f.Kill(ctx, m)
}

func (d *fakeDisks) Damage(ctx context.Context, m *compose.Member, how compose.Damage, class string, _ uint64) (string, error) {
	d.f.record(fmt.Sprintf("%s %s %s", how, class, m.Name))
	return "damaged its " + class, d.f.Kill(ctx, m)
}

func (d *fakeDisks) SlowDisk(_ context.Context, m *compose.Member, delay time.Duration) error {
	return (&fakeLinks{f: d.f}).set(m, []string{"disk slow " + delay.String()})
}

func (d *fakeDisks) FailDisk(_ context.Context, m *compose.Member, how string) error {
	return (&fakeLinks{f: d.f}).set(m, []string{"disk fail " + how})
}

// HealDisk heals a member that is down too, as compose's does.
func (d *fakeDisks) HealDisk(_ context.Context, m *compose.Member) error {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	delete(d.f.rules, m.Name)
	return nil
}

func (f *fakeCluster) Client(...*compose.Member) (*clientv3.Client, error) {
	return nil, errors.New("the fake cluster has no etcd")
}

func (f *fakeCluster) Wipe(context.Context, *compose.Member) error {
	return errors.New("the fake cluster cannot wipe")
}

func (f *fakeCluster) Rejoin(context.Context, *compose.Member, string) error {
	return errors.New("the fake cluster cannot rejoin")
}

func runFor(t *testing.T, c Cluster, faults []Fault, d time.Duration) []history.Event {
	t.Helper()
	var buf bytes.Buffer
	s := Turns(faults, 20*time.Millisecond, 30*time.Millisecond)
	s.Jitter = 0
	n := &Nemesis{Schedule: s, Cluster: c, Recorder: history.NewRecorder(&buf)}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	n.Run(ctx)
	events, err := history.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if ws := history.Faults(events); n.Count() != len(ws) {
		t.Fatalf("count %d, %d windows", n.Count(), len(ws))
	}
	return events
}

func TestKillLeaderSchedule(t *testing.T) {
	c := newFake(3)
	faults, err := Parse("kill-leader")
	if err != nil {
		t.Fatal(err)
	}
	events := runFor(t, c, faults, 250*time.Millisecond)
	if len(c.down) != 0 {
		t.Fatalf("members left down after Run: %v", c.down)
	}
	ws := history.Faults(events)
	if len(ws) < 2 {
		t.Fatalf("got %d fault windows, want at least 2", len(ws))
	}
	for i, w := range ws {
		if w.Stop < w.Start {
			t.Errorf("window %d not healed: %+v", i, w)
		}
		if want := c.members[i%3].Name; !slices.Equal(w.Nodes, []string{want}) {
			t.Errorf("window %d killed %v, want the leader %s", i, w.Nodes, want)
		}
	}
	// Each kill is followed by the restart of the same member.
	for i := 0; i+1 < len(c.log); i += 2 {
		if c.log[i][len("kill "):] != c.log[i+1][len("start "):] {
			t.Fatalf("kill and restart out of step: %v", c.log)
		}
	}
	// Every heal is followed by a recover event for the same fault.
	var recovered int
	for _, e := range events {
		if e.Process == history.Nemesis && e.F == Recover {
			if e.Error != "" || e.Fault != "kill-leader" {
				t.Errorf("recover event %+v", e)
			}
			recovered++
		}
	}
	if recovered < len(ws)-1 {
		t.Errorf("%d recover events for %d windows", recovered, len(ws))
	}
}

// TestMixTakesTurns: several faults take turns, each heals what it did,
// and nothing is left behind.
func TestMixTakesTurns(t *testing.T) {
	c := newFake(5)
	faults, err := Parse("kill-minority,pause-leader,partition-majorities-ring,partition-bridge,kill-all,peer-loss")
	if err != nil {
		t.Fatal(err)
	}
	events := runFor(t, c, faults, 700*time.Millisecond)
	ws := history.Faults(events)
	if len(ws) < 6 {
		t.Fatalf("got %d windows, want every fault once: %+v", len(ws), ws)
	}
	for i, w := range ws[:6] {
		if w.Fault != faults[i].Name() {
			t.Errorf("window %d is %s, want %s", i, w.Fault, faults[i].Name())
		}
		want := map[string]int{"kill-minority": 2, "pause-leader": 1, "partition-majorities-ring": 5, "partition-bridge": 1, "kill-all": 5, "peer-loss": 5}[w.Fault]
		if len(w.Nodes) != want {
			t.Errorf("%s hit %v, want %d members", w.Fault, w.Nodes, want)
		}
	}
	if left, err := Leftovers(context.Background(), c); err != nil || len(left) > 0 {
		t.Fatalf("left behind: %v %v", left, err)
	}
	if strings.Contains(strings.Join(c.log, " "), "pause") && !strings.Contains(strings.Join(c.log, " "), "unpause") {
		t.Fatalf("paused and never thawed: %v", c.log)
	}
}

func TestHealAllAndLeftovers(t *testing.T) {
	c := newFake(3)
	ctx := context.Background()
	c.down["n1"] = true
	c.paused["n2"] = true
	c.rules["n3"] = []string{"10.0.0.1"}
	left, err := Leftovers(ctx, c)
	if err != nil || len(left) != 3 {
		t.Fatalf("leftovers %v %v, want three", left, err)
	}
	if _, err := Settle(ctx, c, nil, time.Second); err != nil {
		t.Fatal(err)
	}
	if left, err := Leftovers(ctx, c); err != nil || len(left) != 0 {
		t.Fatalf("after Settle: %v %v", left, err)
	}
}

func TestPartitionRules(t *testing.T) {
	ctx := context.Background()
	c := newFake(5)
	p := &Partition{kind: partLeader}
	hit, err := p.Start(ctx, c, testRand)
	if err != nil {
		t.Fatal(err)
	}
	if len(hit) != 1 || hit[0] != c.members[c.leader] {
		t.Fatalf("partition-leader hit %v", compose.Names(hit))
	}
	l := hit[0]
	if got := c.rules[l.Name]; len(got) != 4 || slices.Contains(got, l.IP) {
		t.Errorf("the leader drops %v, want the 4 others", got)
	}
	for _, m := range c.members {
		if m != l && !slices.Equal(c.rules[m.Name], []string{l.IP}) {
			t.Errorf("%s drops %v, want only the leader %s", m.Name, c.rules[m.Name], l.IP)
		}
	}
	if err := p.Heal(ctx, c); err != nil {
		t.Fatal(err)
	}
	if len(c.rules) != 0 {
		t.Fatalf("rules left: %v", c.rules)
	}
}

// TestPartitionMember: partition-member cuts off the member it names, the
// leader, or a member that does not lead, and only it; a member the
// cluster lacks is an error at Start (the nemesis records a skip).
func TestPartitionMember(t *testing.T) {
	ctx := context.Background()
	c := newFake(5)
	c.leader = 2
	isolated := func(aim string) string {
		t.Helper()
		p := &Partition{kind: partMember, member: aim}
		hit, err := p.Start(ctx, c, testRand)
		if err != nil {
			t.Fatalf("%s: %v", p.Name(), err)
		}
		if len(hit) != 1 {
			t.Fatalf("%s hit %v", p.Name(), compose.Names(hit))
		}
		one := hit[0]
		for _, m := range c.members {
			want := []string{one.IP}
			if m == one {
				want = nil
				for _, o := range c.members {
					if o != one {
						want = append(want, o.IP)
					}
				}
			}
			if got := slices.Sorted(slices.Values(c.rules[m.Name])); !slices.Equal(got, want) {
				t.Errorf("%s: %s drops %v, want %v", p.Name(), m.Name, got, want)
			}
		}
		if err := p.Heal(ctx, c); err != nil || len(c.rules) != 0 {
			t.Fatalf("%s healed: rules %v, %v", p.Name(), c.rules, err)
		}
		return one.Name
	}
	if got := isolated("n4"); got != "n4" {
		t.Errorf("partition-member=n4 cut %s off", got)
	}
	if got := isolated(roleLeader); got != "n3" {
		t.Errorf("partition-member=leader cut %s off, want the leader n3", got)
	}
	followers := map[string]bool{}
	for range 40 {
		followers[isolated(roleFollower)] = true
	}
	if followers["n3"] || len(followers) != 4 {
		t.Errorf("partition-member=follower cut off %v, want each of the 4 followers some time and never the leader n3", followers)
	}
	p := &Partition{kind: partMember, member: "n7"}
	if _, err := p.Start(ctx, c, testRand); err == nil || !strings.Contains(err.Error(), "n7: not a member") {
		t.Errorf("partition-member=n7 on 5 members started: %v", err)
	}
	if err := p.Heal(ctx, c); err != nil || len(c.rules) != 0 {
		t.Errorf("after a start that failed: rules %v, %v", c.rules, err)
	}
}

// TestPeerLinkRules: peer-loss and peer-latency put their rule on every
// member's links, say how they were made, and heal takes the rules away.
func TestPeerLinkRules(t *testing.T) {
	ctx := context.Background()
	c := newFake(3)
	lat := &PeerLatency{Delay: 150 * time.Millisecond}
	if _, err := lat.Start(ctx, c, testRand); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.members {
		if got := c.rules[m.Name]; !slices.Equal(got, []string{"delay 150ms jitter 0s"}) {
			t.Errorf("%s's rules %v", m.Name, got)
		}
	}
	if got, want := lat.Mechanism(), PeerLatencyMechanism+"; netem: fake"; got != want {
		t.Errorf("mechanism %q, want %q", got, want)
	}
	if err := lat.Heal(ctx, c); err != nil || len(c.rules) != 0 {
		t.Fatalf("after heal: rules %v, %v", c.rules, err)
	}
	loss := &PeerLoss{Loss: 30}
	if _, err := loss.Start(ctx, c, testRand); err != nil {
		t.Fatal(err)
	}
	if got, want := c.rules["n1"], []string{"10.0.0.2 30%", "10.0.0.3 30%"}; !slices.Equal(got, want) {
		t.Errorf("n1's rules %v, want %v", got, want)
	}
	if err := loss.Heal(ctx, c); err != nil || len(c.rules) != 0 {
		t.Fatalf("after heal: rules %v, %v", c.rules, err)
	}
}

func TestParse(t *testing.T) {
	for _, k := range faults {
		fs, err := Parse(k.name)
		if k.make == nil {
			if err == nil || !strings.Contains(err.Error(), "want") {
				t.Errorf("%s without its setting: %v %v, want an error saying what it wants", k.name, fs, err)
			}
		} else if err != nil || len(fs) != 1 || fs[0].Name() != k.name {
			t.Errorf("%s: %v %v", k.name, fs, err)
		}
	}
	if fs, err := Parse("none"); err != nil || fs != nil {
		t.Fatalf("none: %v %v", fs, err)
	}
	if fs, err := Parse("kill-random, pause-leader"); err != nil || len(fs) != 2 {
		t.Fatalf("two faults: %v %v", fs, err)
	}
	for _, bad := range []string{"kill-everything", "", "kill-leader,kill-leader", "none,kill-leader"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, bad := range []string{"kill-leader+kill-leader", "kill-random+", "+"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if fs, err := Parse("partition-leader+pause-random,kill-leader"); err != nil || len(fs) != 2 || fs[0].Name() != "partition-leader+pause-random" {
		t.Errorf("together: %v %v", fs, err)
	}
	if !NeedsPeerProxy("kill-leader,pause-leader+peer-latency") || NeedsPeerProxy("kill-leader,pause-leader+peer-loss") {
		t.Error("NeedsPeerProxy does not look inside a+b")
	}
	for spec, want := range map[string]string{
		"peer-loss=35":               "peer-loss=35",
		"peer-loss=20%":              "peer-loss",
		"peer-latency=200ms:50ms":    "peer-latency=200ms:50ms",
		"peer-latency=300ms":         "peer-latency=300ms:0s",
		"peer-latency=100ms:50ms":    "peer-latency",
		"peer-loss=10,peer-loss=50%": "peer-loss=10",
		"partition-member=n2":        "partition-member=n2",
		"partition-member=leader":    "partition-member=leader",
		"partition-member=follower":  "partition-member=follower",
	} {
		fs, err := Parse(spec)
		if err != nil || fs[0].Name() != want {
			t.Errorf("%s: %v %v, want %s", spec, fs, err, want)
		}
	}
	for _, bad := range []string{"peer-loss=0", "peer-loss=101", "peer-loss=x", "peer-latency=-1s", "peer-latency=10ms:20ms", "kill-leader=3", "peer-loss=10,peer-loss=10",
		"partition-member=", "partition-member=n0", "partition-member=n10", "partition-member=N2", "partition-member=candidate"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Parse("kill-leader,clock"); !errors.Is(err, ErrClock) {
		t.Errorf("clock: %v, want the explanation", err)
	}
	fs, _ := Parse("partition-majorities-ring,kill-minority")
	if err := Fits(fs, 3); err == nil || !strings.Contains(err.Error(), "majorities-ring") {
		t.Errorf("ring on 3 members: %v", err)
	}
	if err := Fits(fs, 5); err != nil {
		t.Errorf("5 members: %v", err)
	}
	fs, _ = Parse("partition-member=n4,partition-member=follower")
	if err := Fits(fs, 3); err == nil || err.Error() != "partition-member=n4 needs at least 4 members, the cluster has 3" {
		t.Errorf("partition-member=n4 on 3 members: %v", err)
	}
	if err := Fits(fs, 4); err != nil {
		t.Errorf("partition-member=n4 on 4 members: %v", err)
	}
	if _, err := Parse("partition-member=n12"); err == nil || !strings.Contains(err.Error(), "partition-member=n12: want a member's name, n1 to n9, or leader, or follower") {
		t.Errorf("partition-member=n12: %v", err)
	}
}

// TestTogether: a partition and a pause in one window; the pause is healed
// first, so the partition's rules can be removed from a running member.
func TestTogether(t *testing.T) {
	c := newFake(5)
	fs, err := Parse("pause-minority+partition-halves")
	if err != nil {
		t.Fatal(err)
	}
	if fs[0].Name() != "partition-halves+pause-minority" {
		t.Errorf("%s: want the partition first", fs[0].Name())
	}
	ctx := context.Background()
	hit, err := fs[0].Start(ctx, c, testRand)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.paused) != 2 || len(c.rules) != 5 || len(hit) < 2 {
		t.Fatalf("paused %v, rules %v, hit %v", c.paused, c.rules, compose.Names(hit))
	}
	if err := fs[0].Heal(ctx, c); err != nil {
		t.Fatal(err)
	}
	if left, err := Leftovers(ctx, c); err != nil || len(left) > 0 {
		t.Fatalf("left behind: %v %v", left, err)
	}
	if err := Fits(fs, 2); err == nil {
		t.Error("a+b on 2 members accepted, though halves need 3")
	}
}

// failing cannot start.
type failing struct{ healed int }

func (*failing) Name() string { return "failing" }
func (*failing) Start(context.Context, Cluster, *rand.Rand) ([]*compose.Member, error) {
	return nil, errors.New("not supported")
}
func (f *failing) Heal(context.Context, Cluster) error { f.healed++; return nil }

// slowKills is a cluster whose kills take a while and, like a container
// engine, carry on when their caller gives up.
type slowKills struct{ *fakeCluster }

func (s slowKills) Kill(ctx context.Context, m *compose.Member) error {
	time.Sleep(100 * time.Millisecond)
	_ = s.fakeCluster.Kill(ctx, m)
	return ctx.Err()
}

// TestFaultUnderWayAtTimeLimit: a kill still in flight when the run ends
// is recorded and healed, not left to land unseen.
func TestFaultUnderWayAtTimeLimit(t *testing.T) {
	c := newFake(3)
	var buf bytes.Buffer
	s := Schedule{Steps: []Step{{Fault: kill(pickLeader), Quiet: 20 * time.Millisecond, For: time.Second}}}
	n := &Nemesis{Schedule: s, Cluster: slowKills{c}, Recorder: history.NewRecorder(&buf), Rand: testRand}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	n.Run(ctx)
	events, err := history.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.down) != 0 {
		t.Errorf("members left down: %v (log %v)", c.down, c.log)
	}
	if ws := history.Faults(events); len(ws) != 1 || ws[0].Stop < ws[0].Start {
		t.Errorf("windows %+v, want the kill recorded and healed", ws)
	}
}

func TestSkippedFaultIsRecorded(t *testing.T) {
	f := &failing{}
	events := runFor(t, newFake(3), []Fault{f}, 120*time.Millisecond)
	var skips int
	for _, e := range events {
		if e.F == Skip && e.Fault == "failing" && e.Error == "not supported" {
			skips++
		}
	}
	if skips == 0 || f.healed != skips || len(history.Faults(events)) != 0 {
		t.Fatalf("%d skips, %d heals, windows %v", skips, f.healed, history.Faults(events))
	}
}
