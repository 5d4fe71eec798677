// Package raftnode runs one member's Raft state machine from go.etcd.io/raft:
// the Ready loop, durability (WAL and snapshot file), snapshots with log
// compaction, and linearizable reads through ReadIndex.
//
// The Ready loop honours the library's contract: a member sends messages
// only after the entries and hard state they depend on are fsynced, and
// calls Advance last. Three relaxations, all safe: the leader sends its
// appends while it writes them itself (it counts toward a quorum only once
// they are durable); committed entries, which are durable on a quorum, are
// applied by a goroutine of their own, in log order, while the Ready's new
// entries are written (both as etcd does); and a follower forwards
// proposals and read requests to the leader at once, as they carry no term
// and promise nothing about its log.
package raftnode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/faultline/faultline/store/wal"
)

// ErrStopped is returned by calls made after the node stopped.
var ErrStopped = errors.New("raftnode: stopped")

// ErrReadTimeout is returned when a ReadIndex could not be confirmed in time.
var ErrReadTimeout = errors.New("raftnode: read index timed out")

// StateMachine is what the log drives.
type StateMachine interface {
	// Apply applies one committed normal entry. It runs on one goroutine,
	// in log order, exactly once per entry per process lifetime.
	Apply(index uint64, data []byte)
	// Snapshot captures the state machine as of the last applied entry
	// and returns a function that serialises that capture; the function
	// runs on another goroutine while entries keep being applied.
	Snapshot() func() ([]byte, error)
	// Restore replaces the state machine with a snapshot's contents.
	Restore(data []byte) error
	// ApplyConfChange learns of a committed membership change, after Raft
	// applied it.
	ApplyConfChange(index uint64, cc raftpb.ConfChange)
}

// Transport delivers messages to peers. Send must not block.
type Transport interface {
	Send(msgs []raftpb.Message)
}

// Config configures a Node.
type Config struct {
	ID    uint64
	Peers []uint64
	// Dir holds the WAL and the snapshot file.
	Dir           string
	Tick          time.Duration
	ElectionTicks int
	// SnapshotCount is the number of applied entries between snapshots.
	SnapshotCount uint64
	// Join starts with an empty log and no peers, to be filled by the
	// leader (etcd's --initial-cluster-state=existing with no data).
	Join bool
	// CatchUpEntries are kept in the log after a snapshot so that slightly
	// lagging followers catch up without a snapshot transfer (default 5000).
	CatchUpEntries uint64
	// UnsafeNoSync turns on the lost-fsync bug: the WAL is written but
	// never fsynced.
	UnsafeNoSync bool
	// UnsafeIgnoreSyncError turns on the ignore-fsync-error bug: a failed
	// WAL fdatasync is taken for a successful one.
	UnsafeIgnoreSyncError bool
	// UnsafeNoDirSync turns on the skip-dir-fsync bug: the WAL's directory
	// is not fsynced after the log is created or renamed into place.
	UnsafeNoDirSync bool
	Logger          *slog.Logger
}

const defaultCatchUpEntries = 5000

// applyQueue is how many Readys' committed entries may wait for applyLoop
// before the Ready loop waits for it.
const applyQueue = 256

// Node is one running Raft member.
type Node struct {
	cfg     Config
	sm      StateMachine
	tr      Transport
	raft    raft.Node
	storage storage
	wal     *wal.WAL
	log     *slog.Logger

	snapPath  string
	snapIndex atomic.Uint64
	hardState raftpb.HardState // last persisted; the Ready loop's
	confState raftpb.ConfState // applyLoop's

	applyq chan applyJob // to applyLoop, in log order

	applied atomic.Uint64
	commit  atomic.Uint64
	term    atomic.Uint64
	leader  atomic.Uint64

	appliedMu sync.Mutex
	appliedCh chan struct{} // closed and replaced whenever applied moves

	readMu     sync.Mutex
	readBatch  *readBatch
	readNotify chan struct{}
	readStates chan raft.ReadState
	readSeq    atomic.Uint64

	leaderCh chan struct{} // closed and replaced on leader change

	forwarded []raftpb.Message // sendForwarded's scratch space

	snapping atomic.Bool       // a snapshot is being written in the background
	snapDone chan snapshotDone // its result

	done chan struct{}
}

type snapshotDone struct {
	snap raftpb.Snapshot
	err  error
}

type readBatch struct {
	done chan struct{}
	err  error
}

// Start opens (or creates) the member's durable state and starts Raft. Run
// must then be called to drive it.
func Start(cfg Config, sm StateMachine, tr Transport) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ElectionTicks <= 1 {
		cfg.ElectionTicks = 10
	}
	if cfg.CatchUpEntries == 0 {
		cfg.CatchUpEntries = defaultCatchUpEntries
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	if err := wal.MkdirAll(cfg.Dir); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:        cfg,
		sm:         sm,
		tr:         tr,
		storage:    storage{raft.NewMemoryStorage(), make(chan struct{}, 1)},
		log:        cfg.Logger,
		snapPath:   filepath.Join(cfg.Dir, "snapshot.bin"),
		appliedCh:  make(chan struct{}),
		readNotify: make(chan struct{}, 1),
		readStates: make(chan raft.ReadState, 64),
		leaderCh:   make(chan struct{}),
		snapDone:   make(chan snapshotDone, 1),
		applyq:     make(chan applyJob, applyQueue),
		done:       make(chan struct{}),
	}
	existing := wal.Exists(filepath.Join(cfg.Dir, "wal"))
	snap, err := loadSnapshot(n.snapPath)
	if err != nil {
		return nil, err
	}
	w, st, err := wal.Open(filepath.Join(cfg.Dir, "wal"), wal.Options{UnsafeNoSync: cfg.UnsafeNoSync,
		UnsafeIgnoreSyncError: cfg.UnsafeIgnoreSyncError, UnsafeNoDirSync: cfg.UnsafeNoDirSync, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	n.wal = w
	if st.Snapshot.Index > snap.Metadata.Index {
		w.Close()
		return nil, &wal.DamageError{Path: n.snapPath,
			Err: fmt.Errorf("the wal starts after snapshot %d but the snapshot file holds %d", st.Snapshot.Index, snap.Metadata.Index)}
	}
	rc := &raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             1,
		Storage:                   n.storage,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           256,
		MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum:               true,
		PreVote:                   true,
		Logger:                    raftLogger{cfg.Logger.With("component", "raft")},
	}
	if !existing {
		if cfg.Join {
			n.raft = raft.RestartNode(rc)
		} else {
			peers := make([]raft.Peer, len(cfg.Peers))
			for i, id := range cfg.Peers {
				peers[i] = raft.Peer{ID: id}
			}
			n.raft = raft.StartNode(rc, peers)
		}
		n.log.Info("started new raft member", "id", fmt.Sprintf("%x", cfg.ID), "peers", len(cfg.Peers), "join", cfg.Join)
		return n, nil
	}
	if !raft.IsEmptySnap(snap) {
		if err := n.storage.ApplySnapshot(snap); err != nil {
			w.Close()
			return nil, fmt.Errorf("load snapshot into raft storage: %w", err)
		}
		if err := sm.Restore(snap.Data); err != nil {
			w.Close()
			return nil, fmt.Errorf("restore state machine: %w", err)
		}
		n.snapIndex.Store(snap.Metadata.Index)
		n.confState = snap.Metadata.ConfState
		n.applied.Store(snap.Metadata.Index)
		rc.Applied = snap.Metadata.Index
	}
	ents := st.Entries
	for len(ents) > 0 && ents[0].Index <= snap.Metadata.Index {
		ents = ents[1:]
	}
	// A snapshot holds only committed state, so the commit index is at
	// least its index even if the log's hard state record is older.
	if st.HardState.Commit < snap.Metadata.Index {
		st.HardState.Commit = snap.Metadata.Index
		if st.HardState.Term < snap.Metadata.Term {
			st.HardState.Term = snap.Metadata.Term
		}
	}
	if err := n.storage.SetHardState(st.HardState); err != nil {
		w.Close()
		return nil, fmt.Errorf("load hard state: %w", err)
	}
	if err := n.storage.Append(ents); err != nil {
		w.Close()
		return nil, fmt.Errorf("load entries: %w", err)
	}
	n.term.Store(st.HardState.Term)
	n.commit.Store(st.HardState.Commit)
	n.hardState = st.HardState
	n.raft = raft.RestartNode(rc)
	n.log.Info("restarted raft member from disk", "id", fmt.Sprintf("%x", cfg.ID),
		"snapshot-index", snap.Metadata.Index, "entries", len(ents), "term", st.HardState.Term,
		"commit", st.HardState.Commit, "torn-bytes-dropped", st.Truncated)
	return n, nil
}

// Run drives Raft until ctx is done, then stops it and closes the WAL.
func (n *Node) Run(ctx context.Context) error {
	defer close(n.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	applyErr := make(chan error, 1)
	wg.Go(func() {
		if err := n.applyLoop(ctx); err != nil {
			applyErr <- err
			cancel()
		}
	})
	wg.Go(func() { n.readLoop(ctx) })
	err := n.loop(ctx)
	cancel()
	wg.Wait()
	select {
	case aerr := <-applyErr:
		n.log.Error("applying committed entries failed; stopping", "err", aerr)
		if err == nil {
			err = aerr
		}
	default:
	}
	if n.snapping.Load() {
		<-n.snapDone // the writer must not outlive the node
	}
	n.raft.Stop()
	if cerr := n.wal.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// Done is closed once Run has returned.
func (n *Node) Done() <-chan struct{} { return n.done }

func (n *Node) loop(ctx context.Context) error {
	ticker := time.NewTicker(n.cfg.Tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			n.raft.Tick()
		case d := <-n.snapDone:
			if err := n.finishSnapshot(d); err != nil {
				n.log.Error("snapshot failed; stopping", "err", err)
				return err
			}
		case rd := <-n.raft.Ready():
			if err := n.handleReady(ctx, rd); err != nil {
				n.log.Error("raft ready loop failed; stopping", "err", err)
				return err
			}
		}
	}
}

func (n *Node) handleReady(ctx context.Context, rd raft.Ready) error {
	if rd.SoftState != nil {
		if old := n.leader.Swap(rd.SoftState.Lead); old != rd.SoftState.Lead {
			n.log.Info("leader changed", "leader", fmt.Sprintf("%x", rd.SoftState.Lead), "state", rd.SoftState.RaftState.String())
			n.appliedMu.Lock()
			close(n.leaderCh)
			n.leaderCh = make(chan struct{})
			n.appliedMu.Unlock()
		}
	}
	for _, rs := range rd.ReadStates {
		select {
		case n.readStates <- rs:
		default: // nobody is waiting for an old one; the read loop retries
		}
	}

	// The leader may send its appends before its own write is durable
	// (Raft thesis 10.2.1, as etcd does): the library counts the leader
	// toward a quorum only after Advance, i.e. once persisted. Everyone
	// else persists first.
	// The commit index is known here before any follower hears of it, so
	// a leader that waits until it applied CommitIndex has applied all a
	// follower may have applied and answered a client about.
	if !raft.IsEmptyHardState(rd.HardState) {
		n.hardState = rd.HardState
		n.term.Store(rd.HardState.Term)
		n.commit.Store(rd.HardState.Commit)
	}
	leading := n.leader.Load() == n.cfg.ID
	msgs := rd.Messages
	if leading {
		// gofail: var raftBeforeLeaderSend struct{}
		n.tr.Send(msgs)
	} else {
		msgs = n.sendForwarded(msgs)
	}

	// A snapshot from the leader is made durable and installed first: the
	// committed entries of this Ready follow it.
	if !raft.IsEmptySnap(rd.Snapshot) {
		if n.snapping.Load() {
			// Let our own snapshot land first, so the leader's, which
			// is newer, is the one left on disk.
			if err := n.finishSnapshot(<-n.snapDone); err != nil {
				return err
			}
		}
		// gofail: var raftBeforeSaveSnap struct{}
		if err := saveSnapshot(n.snapPath, rd.Snapshot); err != nil {
			return err
		}
		// The rewritten log must carry the hard state even when this
		// Ready did not change it.
		// gofail: var raftAfterSaveSnap struct{}
		if err := n.wal.Rewrite(rd.Snapshot.Metadata, n.hardState, nil); err != nil {
			return err
		}
		if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("apply snapshot to raft storage: %w", err)
		}
		n.snapIndex.Store(rd.Snapshot.Metadata.Index)
		if !n.enqueueApply(ctx, applyJob{snap: &rd.Snapshot}) {
			return nil
		}
	}

	// Committed entries are durable on a quorum already, so they may be
	// applied (and their clients answered) while this Ready's new entries
	// are written, as etcd does. The state machine lives in memory and is
	// rebuilt from the log after a crash, so nothing is lost by it.
	var confApplied chan struct{}
	if len(rd.CommittedEntries) > 0 {
		j := applyJob{ents: rd.CommittedEntries}
		if hasConfChange(rd.CommittedEntries) {
			confApplied = make(chan struct{})
			j.done = confApplied
		}
		if !n.enqueueApply(ctx, j) {
			return nil
		}
	}

	// Persist the new entries and hard state.
	// gofail: var raftBeforeSave struct{}
	if err := n.wal.Save(rd.HardState, rd.Entries, rd.MustSync); err != nil {
		return err
	}
	// gofail: var raftAfterSave struct{}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("set hard state: %w", err)
		}
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("append entries to raft storage: %w", err)
	}

	// A membership change must be in force before this member sends or
	// steps anything more, or it could count votes or acknowledgements
	// against the old membership (etcd waits alike).
	if confApplied != nil {
		select {
		case <-confApplied:
		case <-ctx.Done():
			return nil
		}
	}

	// Send, now that what the messages promise is durable.
	if !leading {
		// gofail: var raftBeforeFollowerSend struct{}
		n.tr.Send(msgs)
	}
	n.raft.Advance()
	return nil
}

func hasConfChange(ents []raftpb.Entry) bool {
	for _, e := range ents {
		if e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2 {
			return true
		}
	}
	return false
}

// applyJob is work for applyLoop: committed entries, or a snapshot from the
// leader to restore the state machine from. done, if set, is closed once
// the job is applied.
type applyJob struct {
	ents []raftpb.Entry
	snap *raftpb.Snapshot
	done chan struct{}
}

func (n *Node) enqueueApply(ctx context.Context, j applyJob) bool {
	select {
	case n.applyq <- j:
		return true
	case <-ctx.Done():
		return false
	}
}

// applyLoop applies committed entries and snapshots from the leader in log
// order, pipelined with the Ready loop's disk writes, and starts a snapshot
// of our own when enough has been applied.
func (n *Node) applyLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.storage.wanted:
			if err := n.snapshot(); err != nil {
				return err
			}
		case j := <-n.applyq:
			var err error
			if j.snap != nil {
				err = n.restore(*j.snap)
			} else {
				err = n.applyEntries(j.ents)
			}
			if j.done != nil {
				close(j.done)
			}
			if err == nil {
				err = n.maybeSnapshot()
			}
			if err != nil {
				return err
			}
		}
	}
}

func (n *Node) restore(snap raftpb.Snapshot) error {
	// gofail: var raftBeforeApplySnap struct{}
	if err := n.sm.Restore(snap.Data); err != nil {
		return fmt.Errorf("restore state machine from snapshot: %w", err)
	}
	// gofail: var raftAfterApplySnap struct{}
	n.confState = snap.Metadata.ConfState
	n.setApplied(snap.Metadata.Index)
	n.log.Info("applied snapshot from leader", "index", snap.Metadata.Index)
	return nil
}

// sendForwarded sends the proposals and read requests a follower forwards
// to the leader at once and returns the other messages. Raft gives those
// two no term and they promise nothing about this member's log, so they
// need not wait for its disk; holding them back would add a disk write to
// every write and read that reaches a follower.
func (n *Node) sendForwarded(msgs []raftpb.Message) []raftpb.Message {
	n.forwarded = n.forwarded[:0]
	rest := msgs[:0]
	for _, m := range msgs {
		if m.Type == raftpb.MsgProp || m.Type == raftpb.MsgReadIndex {
			n.forwarded = append(n.forwarded, m)
		} else {
			rest = append(rest, m)
		}
	}
	n.tr.Send(n.forwarded)
	clear(n.forwarded) // do not keep the entries alive
	return rest
}

func (n *Node) applyEntries(ents []raftpb.Entry) error {
	for _, e := range ents {
		if e.Index <= n.applied.Load() {
			continue
		}
		switch e.Type {
		case raftpb.EntryNormal:
			if len(e.Data) > 0 {
				n.sm.Apply(e.Index, e.Data)
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("decode conf change at %d: %w", e.Index, err)
			}
			n.confState = *n.raft.ApplyConfChange(cc)
			n.sm.ApplyConfChange(e.Index, cc)
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("decode conf change at %d: %w", e.Index, err)
			}
			n.confState = *n.raft.ApplyConfChange(cc)
		}
		n.setApplied(e.Index)
	}
	return nil
}

func (n *Node) setApplied(i uint64) {
	n.applied.Store(i)
	n.appliedMu.Lock()
	close(n.appliedCh)
	n.appliedCh = make(chan struct{})
	n.appliedMu.Unlock()
}

// maybeSnapshot starts a snapshot in the background once enough entries have
// been applied since the last one. Encoding and writing it can take long
// for a big key space; applying goes on meanwhile.
func (n *Node) maybeSnapshot() error {
	if n.cfg.SnapshotCount == 0 || n.applied.Load()-n.snapIndex.Load() < n.cfg.SnapshotCount {
		return nil
	}
	return n.snapshot()
}

// snapshot starts a snapshot of everything applied, unless one is being
// written or nothing was applied since the last.
func (n *Node) snapshot() error {
	applied := n.applied.Load()
	if n.snapping.Load() || applied <= n.snapIndex.Load() {
		return nil
	}
	term, err := n.storage.Term(applied)
	if errors.Is(err, raft.ErrCompacted) || errors.Is(err, raft.ErrUnavailable) {
		// A newer snapshot from the leader is installed, or the Ready
		// loop has not added the entry to the storage yet: try later.
		return nil
	}
	if err != nil {
		return fmt.Errorf("term of applied index %d: %w", applied, err)
	}
	encode := n.sm.Snapshot()
	meta := raftpb.SnapshotMetadata{Index: applied, Term: term, ConfState: n.confState}
	n.snapping.Store(true)
	go func() {
		data, err := encode()
		snap := raftpb.Snapshot{Data: data, Metadata: meta}
		if err == nil {
			err = saveSnapshot(n.snapPath, snap)
		}
		n.snapDone <- snapshotDone{snap: snap, err: err}
	}()
	return nil
}

// finishSnapshot runs on the Ready loop, which owns the WAL, once a snapshot
// is durable: it starts the log after it and compacts Raft's in-memory log.
func (n *Node) finishSnapshot(d snapshotDone) error {
	// Only once snapIndex has moved may applyLoop start the next one;
	// cleared earlier, it would see the old index and at once encode the
	// whole key space again.
	defer n.snapping.Store(false)
	if d.err != nil {
		return d.err
	}
	index := d.snap.Metadata.Index
	if index <= n.snapIndex.Load() {
		return nil // a newer snapshot from the leader got there first
	}
	if _, err := n.storage.CreateSnapshot(index, &d.snap.Metadata.ConfState, d.snap.Data); err != nil {
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			return nil
		}
		return fmt.Errorf("create raft snapshot: %w", err)
	}
	last, err := n.storage.LastIndex()
	if err != nil {
		return fmt.Errorf("read last index: %w", err)
	}
	var tail []raftpb.Entry
	if last > index {
		if tail, err = n.storage.Entries(index+1, last+1, ^uint64(0)); err != nil {
			return fmt.Errorf("read log tail: %w", err)
		}
	}
	// gofail: var raftBeforeWALRelease struct{}
	if err := n.wal.Rewrite(d.snap.Metadata, n.hardState, tail); err != nil {
		return err
	}
	// gofail: var raftAfterWALRelease struct{}
	if index > n.cfg.CatchUpEntries {
		if err := n.storage.Compact(index - n.cfg.CatchUpEntries); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("compact raft log: %w", err)
		}
	}
	n.snapIndex.Store(index)
	n.log.Info("saved snapshot and compacted the log", "index", index, "bytes", len(d.snap.Data))
	return nil
}

// Step hands a message from a peer to Raft.
func (n *Node) Step(ctx context.Context, m raftpb.Message) error {
	return n.raft.Step(ctx, m)
}

// ProposeConfChange submits a membership change. It does not wait.
func (n *Node) ProposeConfChange(ctx context.Context, cc raftpb.ConfChange) error {
	return n.raft.ProposeConfChange(ctx, cc)
}

// Propose submits data to the log. It does not wait for the commit.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	return n.raft.Propose(ctx, data)
}

// ReportUnreachable tells Raft a peer could not be reached.
func (n *Node) ReportUnreachable(id uint64) { n.raft.ReportUnreachable(id) }

// ReportSnapshot tells Raft how sending a snapshot went.
func (n *Node) ReportSnapshot(id uint64, ok bool) {
	st := raft.SnapshotFinish
	if !ok {
		st = raft.SnapshotFailure
	}
	n.raft.ReportSnapshot(id, st)
}

// ID is the member's Raft ID.
func (n *Node) ID() uint64 { return n.cfg.ID }

// Leader is the current leader's ID as this member knows it (0 if none).
func (n *Node) Leader() uint64 { return n.leader.Load() }

// Term is the current Raft term.
func (n *Node) Term() uint64 { return n.term.Load() }

// AppliedIndex is the index of the last applied entry.
func (n *Node) AppliedIndex() uint64 { return n.applied.Load() }

// CommitIndex is the last known committed index.
func (n *Node) CommitIndex() uint64 { return n.commit.Load() }

// LeaderChanged returns a channel closed at the next leader change.
func (n *Node) LeaderChanged() <-chan struct{} {
	n.appliedMu.Lock()
	defer n.appliedMu.Unlock()
	return n.leaderCh
}

func (n *Node) appliedChanged() <-chan struct{} {
	n.appliedMu.Lock()
	defer n.appliedMu.Unlock()
	return n.appliedCh
}

// WaitApplied blocks until the applied index reaches index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	return n.waitUntil(ctx, n.appliedChanged, func() bool { return n.applied.Load() >= index })
}

// waitUntil blocks until reached() holds, checking it again each time the
// channel changed() handed out is closed. The channel is taken before the
// check so that a change in between is not missed.
func (n *Node) waitUntil(ctx context.Context, changed func() <-chan struct{}, reached func() bool) error {
	for {
		ch := changed()
		if reached() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return ErrStopped
		}
	}
}

// ReadIndex blocks until this member has applied everything committed when
// the call was made, as confirmed by a quorum through Raft's ReadIndex. A read
// served after it returns is linearizable. Concurrent callers share one
// ReadIndex round trip.
func (n *Node) ReadIndex(ctx context.Context) error {
	n.readMu.Lock()
	b := n.readBatch
	if b == nil {
		b = &readBatch{done: make(chan struct{})}
		n.readBatch = b
	}
	n.readMu.Unlock()
	select {
	case n.readNotify <- struct{}{}:
	default:
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
}

func (n *Node) readLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			n.readMu.Lock()
			if b := n.readBatch; b != nil {
				b.err = ErrStopped
				close(b.done)
				n.readBatch = nil
			}
			n.readMu.Unlock()
			return
		case <-n.readNotify:
		}
		n.readMu.Lock()
		b := n.readBatch
		n.readBatch = nil
		n.readMu.Unlock()
		if b == nil {
			continue
		}
		b.err = n.confirmRead(ctx)
		close(b.done)
	}
}

// confirmRead runs one ReadIndex round and waits until it is applied.
func (n *Node) confirmRead(ctx context.Context) error {
	// Retry: Raft silently drops a ReadIndex when there is no leader, or
	// the message to the leader may be lost.
	retry := 2 * n.cfg.Tick * time.Duration(n.cfg.ElectionTicks)
	if retry < 200*time.Millisecond {
		retry = 200 * time.Millisecond
	}
	deadline := time.NewTimer(10 * retry)
	defer deadline.Stop()
	for {
		id := n.readSeq.Add(1)
		rctx := make([]byte, 16)
		binary.BigEndian.PutUint64(rctx, n.cfg.ID)
		binary.BigEndian.PutUint64(rctx[8:], id)
		if err := n.raft.ReadIndex(ctx, rctx); err != nil {
			return fmt.Errorf("read index: %w", err)
		}
		index, ok, err := n.awaitReadState(ctx, rctx, retry, deadline.C)
		if err != nil {
			return err
		}
		if ok {
			return n.WaitApplied(ctx, index)
		}
	}
}

func (n *Node) awaitReadState(ctx context.Context, rctx []byte, retry time.Duration, deadline <-chan time.Time) (uint64, bool, error) {
	t := time.NewTimer(retry)
	defer t.Stop()
	leaderCh := n.LeaderChanged()
	for {
		select {
		case rs := <-n.readStates:
			if string(rs.RequestCtx) == string(rctx) {
				return rs.Index, true, nil
			}
		case <-t.C:
			return 0, false, nil
		case <-leaderCh:
			return 0, false, nil
		case <-deadline:
			return 0, false, ErrReadTimeout
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
	}
}

// TransferLeadership asks Raft to hand leadership to transferee and waits
// until this member sees the new leader.
func (n *Node) TransferLeadership(ctx context.Context, transferee uint64) error {
	n.raft.TransferLeadership(ctx, n.leader.Load(), transferee)
	return n.waitUntil(ctx, n.LeaderChanged, func() bool { return n.leader.Load() == transferee })
}
