package raftnode

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// storage is Raft's log in memory, which never hands Raft an empty snapshot.
// Before the member's first snapshot its log starts at index 1, so a leader
// needs none to catch a follower up; it asks for one only when a follower's
// log cannot be lined up with its own, as after members lost log entries
// they had acknowledged. Raft panics on an empty snapshot, which would take
// the leader down with the follower's trouble; instead the follower waits
// while applyLoop takes a snapshot that Raft can send.
type storage struct {
	*raft.MemoryStorage
	wanted chan struct{} // a snapshot was asked for and there is none
}

func (s storage) Snapshot() (raftpb.Snapshot, error) {
	snap, err := s.MemoryStorage.Snapshot()
	if err != nil || !raft.IsEmptySnap(snap) {
		return snap, err
	}
	select {
	case s.wanted <- struct{}{}:
	default:
	}
	return snap, raft.ErrSnapshotTemporarilyUnavailable
}
