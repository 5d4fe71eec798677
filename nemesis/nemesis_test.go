package nemesis

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
)

// fakeCluster has a leader that moves to the next member when killed.
type fakeCluster struct {
	members []*compose.Member
	leader  int
	down    map[string]bool
	log     []string
}

func (f *fakeCluster) Leader(context.Context) (*compose.Member, error) {
	if f.down[f.members[f.leader].Name] {
		return nil, errors.New("electing")
	}
	return f.members[f.leader], nil
}

func (f *fakeCluster) Kill(_ context.Context, m *compose.Member) error {
	f.down[m.Name] = true
	f.log = append(f.log, "kill "+m.Name)
	f.leader = (f.leader + 1) % len(f.members)
	return nil
}

func (f *fakeCluster) Start(_ context.Context, m *compose.Member) error {
	delete(f.down, m.Name)
	f.log = append(f.log, "start "+m.Name)
	return nil
}

func TestKillLeaderSchedule(t *testing.T) {
	c := &fakeCluster{members: []*compose.Member{{Name: "n1"}, {Name: "n2"}, {Name: "n3"}}, down: map[string]bool{}}
	var buf bytes.Buffer
	n := &Nemesis{Fault: &KillLeader{}, Cluster: c, Recorder: history.NewRecorder(&buf),
		Schedule: Schedule{Interval: 20 * time.Millisecond, Duration: 30 * time.Millisecond}}
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Millisecond)
	defer cancel()
	n.Run(ctx)

	if len(c.down) != 0 {
		t.Fatalf("members left down after Run: %v", c.down)
	}
	events, err := history.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ws := history.Faults(events)
	if len(ws) < 2 || n.Count() != len(ws) {
		t.Fatalf("got %d fault windows, count %d; want at least 2 and equal", len(ws), n.Count())
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
}

func TestParse(t *testing.T) {
	if f, err := Parse("kill-leader"); err != nil || f.Name() != "kill-leader" {
		t.Fatalf("kill-leader: %v %v", f, err)
	}
	if f, err := Parse("none"); err != nil || f != nil {
		t.Fatalf("none: %v %v", f, err)
	}
	if _, err := Parse("kill-everything"); err == nil {
		t.Fatal("unknown nemesis accepted")
	}
}
