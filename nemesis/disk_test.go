package nemesis

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
)

// TestPowerLossRecordsWhatWasDropped: a power loss of every member says per
// member what it dropped, on the start event and the fault window.
func TestPowerLossRecordsWhatWasDropped(t *testing.T) {
	c := newFake(3)
	fs, err := Parse("power-loss-all")
	if err != nil {
		t.Fatal(err)
	}
	events := runFor(t, c, fs, 200*time.Millisecond)
	ws := history.Faults(events)
	if len(ws) == 0 {
		t.Fatal("no power loss happened")
	}
	if len(ws[0].Effects) != 3 || !strings.Contains(ws[0].Effects["n2"], "dropped") {
		t.Errorf("effects %v, want what each of the 3 members dropped", ws[0].Effects)
	}
	if len(c.down) != 0 {
		t.Errorf("members left down after the heal: %v", c.down)
	}
	if !slices.Contains(c.log, "power-loss n1") {
		t.Errorf("log %v: n1's power was never cut", c.log)
	}
}

// TestFollowersLoss: the followers lose power, the leader is killed, and
// on heal the followers start first and the old leader last.
func TestFollowersLoss(t *testing.T) {
	c := newFake(3)
	f := &FollowersLoss{}
	ctx := context.Background()
	hit, err := f.Start(ctx, c, testRand)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"power-loss n2", "kill n2", "power-loss n3", "kill n3", "kill n1"}
	if !slices.Equal(c.log, want) || len(hit) != 3 {
		t.Fatalf("log %v, hit %v; want %v", c.log, compose.Names(hit), want)
	}
	if !strings.Contains(f.Effects()["n1"], "leader") || !strings.Contains(f.Effects()["n3"], "dropped") {
		t.Errorf("effects %v", f.Effects())
	}
	c.log = nil
	if err := f.Heal(ctx, c); err != nil {
		t.Fatal(err)
	}
	if want := []string{"start n2", "start n3", "start n1"}; !slices.Equal(c.log, want) {
		t.Errorf("heal %v, want %v", c.log, want)
	}
}

// TestFailDiskCutsThePower: on heal a member still running on its failing
// disk loses its power first, so what it could not persist is gone; one
// that crashed is restarted. Either way the disk is healed and it runs.
func TestFailDiskCutsThePower(t *testing.T) {
	for _, crashed := range []bool{false, true} {
		c := newFake(3)
		f, hit := startFailDisk(t, c, "disk-error=enospc")
		ctx := context.Background()
		m := hit[0]
		if got := c.rules[m.Name]; !slices.Equal(got, []string{"disk fail enospc"}) {
			t.Fatalf("rules of %s: %v", m.Name, got)
		}
		if crashes := gather(Fault(f), crasher.Crashes); crashes[0] != m.Name {
			t.Errorf("crashes %v, want %s: a store may crash on a failing disk", crashes, m.Name)
		}
		if crashed {
			c.Kill(ctx, m)
		}
		c.log = nil
		if err := f.Heal(ctx, c); err != nil {
			t.Fatal(err)
		}
		if c.down[m.Name] || len(c.rules) != 0 {
			t.Errorf("crashed %v, after the heal: down %v, rules %v", crashed, c.down, c.rules)
		}
		cut := slices.Contains(c.log, "power-loss "+m.Name)
		if cut == crashed || !strings.Contains(f.Effects()[m.Name], map[bool]string{false: "power cut", true: "crashed"}[crashed]) {
			t.Errorf("crashed %v: power cut %v, effects %v", crashed, cut, f.Effects())
		}
	}
}

// TestFailDiskMajority: @majority fails the disks of a majority at once,
// and heal cuts the power of each before mending its disk.
func TestFailDiskMajority(t *testing.T) {
	c := newFake(5)
	f, hit := startFailDisk(t, c, "disk-error=eio@majority")
	ctx := context.Background()
	if len(hit) != 3 || len(f.Effects()) != 3 || len(gather(Fault(f), crasher.Crashes)) != 3 {
		t.Fatalf("hit %d members, effects %v: want 3 of 5", len(hit), f.Effects())
	}
	c.log = nil
	if err := f.Heal(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, m := range hit {
		if !slices.Contains(c.log, "power-loss "+m.Name) || c.down[m.Name] {
			t.Errorf("%s: heal log %v, down %v: want its power cut and it running", m.Name, c.log, c.down)
		}
	}
	if len(c.rules) != 0 {
		t.Errorf("rules left after the heal: %v", c.rules)
	}
}

func TestDiskFaultsParse(t *testing.T) {
	for _, tc := range []struct{ spec, err string }{
		{"disk-slow=250ms", ""},
		{"disk-slow=soon", "want a delay"},
		{"disk-error=eio", ""},
		{"disk-error=ebusy", "want disk-error=eio"},
		{"disk-error=eio@majority", ""},
		{"disk-slow=@all", ""},
		{"disk-error=eio@half", "@half: want @random, @leader, @minority, @majority or @all"},
		{"power-loss-followers+peer-latency", ""},
	} {
		fs, err := Parse(tc.spec)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want %q", tc.spec, err, tc.err)
			continue
		}
		if err == nil && !needsDisk(fs) {
			t.Errorf("%s: NeedsDisk is false", tc.spec)
		}
	}
	if NeedsDisk("kill-all,partition-leader") {
		t.Error("kill-all,partition-leader needs no disk layer, NeedsDisk says it does")
	}
	if fs, _ := Parse("disk-slow=1s"); fs[0].(*SlowDisk).Delay != time.Second {
		t.Errorf("disk-slow=1s: delay %v", fs[0].(*SlowDisk).Delay)
	}
	if fs, _ := Parse("disk-slow=1s@leader"); fs[0].(*SlowDisk).Delay != time.Second || fs[0].(*SlowDisk).Pick != pickLeader {
		t.Errorf("disk-slow=1s@leader: %+v", fs[0])
	}
	if fs, _ := Parse("disk-truncate"); fs[0].(*Damage).how != compose.Cut {
		t.Error("disk-truncate does not cut")
	}
}

// startFailDisk starts the disk-error fault spec on c.
func startFailDisk(t *testing.T, c *fakeCluster, spec string) (*FailDisk, []*compose.Member) {
	t.Helper()
	fs, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	f := fs[0].(*FailDisk)
	hit, err := f.Start(context.Background(), c, testRand)
	if err != nil {
		t.Fatal(err)
	}
	return f, hit
}
