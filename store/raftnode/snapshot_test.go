package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// counter is a state machine that only counts what it is asked to do. It
// applies an entry more slowly than entries come, so many small batches of
// them queue up for it, as they do on a busy member.
type counter struct{ applied, snapshots atomic.Int64 }

func (c *counter) Apply(uint64, []byte) {
	spin(300 * time.Microsecond)
	c.applied.Add(1)
}

// spin waits d without sleeping, which would wait a millisecond or more.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

func (c *counter) Snapshot() func() ([]byte, error) {
	c.snapshots.Add(1)
	return func() ([]byte, error) { return []byte("state"), nil }
}

func (c *counter) Restore([]byte) error                      { return nil }
func (c *counter) ApplyConfChange(uint64, raftpb.ConfChange) {}

type noPeers struct{}

func (noPeers) Send([]raftpb.Message) {}

// A snapshot encodes the whole key space, so one taken again as soon as the
// last one lands costs a large store dearly: snapshots must come about
// every SnapshotCount entries, no more often: their indexes at least that
// far apart, so at most entries/SnapshotCount of them.
func TestSnapshotEverySnapshotCountEntries(t *testing.T) {
	const every, entries = 200, 6000
	sm := &counter{}
	ctx, n := runSingle(t, Config{SnapshotCount: every, CatchUpEntries: 10}, sm)

	for i := range entries {
		if err := n.Propose(ctx, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
		spin(200 * time.Microsecond)
	}
	for sm.applied.Load() < entries {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d entries applied", sm.applied.Load(), entries)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, most := sm.snapshots.Load(), int64(entries/every)
	if got > most || got == 0 {
		t.Errorf("%d snapshots for %d entries with SnapshotCount %d, want 1 to %d", got, entries, every, most)
	}
}

// A leader asks for a snapshot only for a follower whose log it cannot line
// up with its own; before the first snapshot there is none, and Raft panics
// on an empty one. The storage must say "not yet" and have one taken.
func TestSnapshotTakenWhenRaftAsksForOne(t *testing.T) {
	sm := &counter{}
	ctx, n := runSingle(t, Config{}, sm)
	for i := range 10 {
		if err := n.Propose(ctx, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for sm.applied.Load() < 10 {
		if ctx.Err() != nil {
			t.Fatalf("%d of 10 entries applied", sm.applied.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := n.storage.Snapshot(); !errors.Is(err, raft.ErrSnapshotTemporarilyUnavailable) {
		t.Fatalf("before any snapshot, storage.Snapshot() = %v, want ErrSnapshotTemporarilyUnavailable", err)
	}
	for {
		snap, err := n.storage.Snapshot()
		if err == nil && snap.Metadata.Index >= 10 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no snapshot after raft asked for one: %v, index %d", err, snap.Metadata.Index)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if sm.snapshots.Load() != 1 {
		t.Errorf("%d snapshots taken, want the 1 asked for", sm.snapshots.Load())
	}
}

// runSingle starts a member alone in its cluster with cfg, sm its state
// machine, and returns once it leads; it stops when the test ends.
func runSingle(t *testing.T, cfg Config, sm StateMachine) (context.Context, *Node) {
	t.Helper()
	cfg.ID, cfg.Peers, cfg.Dir, cfg.Tick, cfg.Logger = 1, []uint64{1}, t.TempDir(), 10*time.Millisecond, slog.New(slog.DiscardHandler)
	n, err := Start(cfg, sm, noPeers{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(func() {
		cancel()
		<-n.Done()
	})
	go n.Run(ctx)
	for n.Leader() != 1 {
		if ctx.Err() != nil {
			t.Fatal("the single member never led")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ctx, n
}
