package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/faultline/faultline/store/membership"
)

// memberRecord is one voting member in the replicated peer table.
type memberRecord struct {
	Name     string
	PeerURLs []string
}

// MembersInfo is what a member joining with --initial-cluster-state
// existing learns from the running ones: the cluster ID and every member's
// ID and peer URLs, so it can find its own ID by its peer URLs.
type MembersInfo struct {
	ClusterID uint64
	Members   map[uint64][]string
}

// confContext travels in a ConfChange so every member learns the peer URLs
// of an added member.
type confContext struct {
	PeerURLs []string
}

// peerURLs copies the peer table; s.mu must be held.
func (s *Server) peerURLs() map[uint64][]string {
	out := make(map[uint64][]string, len(s.peers))
	for id, rec := range s.peers {
		out[id] = rec.PeerURLs
	}
	return out
}

// ApplyConfChange implements raftnode.StateMachine: it keeps the peer table
// in step with Raft's configuration and answers the member call waiting
// for it.
func (s *Server) ApplyConfChange(index uint64, cc raftpb.ConfChange) {
	s.mu.Lock()
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		if _, ok := s.peers[cc.NodeID]; !ok {
			var c confContext
			if len(cc.Context) > 0 {
				if err := json.Unmarshal(cc.Context, &c); err != nil {
					s.log.Error("bad member context in conf change", "index", index, "err", err)
				}
			}
			s.peers[cc.NodeID] = memberRecord{PeerURLs: c.PeerURLs}
		}
	case raftpb.ConfChangeRemoveNode:
		delete(s.peers, cc.NodeID)
		delete(s.members, cc.NodeID)
		if cc.NodeID == s.cfg.Self.ID {
			s.log.Warn("this member was removed from the cluster")
		}
	}
	peers := s.peerURLs()
	s.mu.Unlock()
	if s.cfg.SyncPeers != nil {
		s.cfg.SyncPeers(peers)
	}
	if cc.ID == 0 {
		return
	}
	s.waitMu.Lock()
	ch := s.waits[cc.ID]
	s.waitMu.Unlock()
	if ch != nil {
		select {
		case ch <- result{struct{}{}, nil}:
		default:
		}
	}
}

// proposeConfChange replicates cc and waits until this member applied it.
func (s *Server) proposeConfChange(ctx context.Context, cc raftpb.ConfChange) error {
	cc.ID = s.nextID()
	ch := make(chan result, 1)
	s.waitMu.Lock()
	s.waits[cc.ID] = ch
	s.waitMu.Unlock()
	defer func() {
		s.waitMu.Lock()
		delete(s.waits, cc.ID)
		s.waitMu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if err := s.node.ProposeConfChange(ctx, cc); err != nil {
		return s.ctxErr(ctx, err)
	}
	select {
	case res := <-ch:
		return res.err
	case <-ctx.Done():
		return s.ctxErr(ctx, ctx.Err())
	case <-s.node.Done():
		return rpctypes.ErrGRPCStopped
	}
}

// MemberAdd adds a voting member. As in etcd its ID is new (salted with the
// time), because Raft must never see a removed ID again; the new member
// learns it from the others when it starts with --initial-cluster-state
// existing.
func (c *Cluster) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	s := c.s
	if r.IsLearner {
		return nil, rpctypes.ErrGRPCNotCapable
	}
	if len(r.PeerURLs) == 0 {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	urls := slices.Clone(r.PeerURLs)
	sort.Strings(urls)
	for _, u := range urls {
		if _, err := membership.SplitURLs(u); err != nil {
			return nil, rpctypes.ErrGRPCMemberBadURLs
		}
	}
	id := membership.MemberID(urls, fmt.Sprint(s.cfg.Cluster.Token, time.Now().UnixNano()))
	s.mu.RLock()
	inUse := false
	for _, rec := range s.peers {
		for _, u := range rec.PeerURLs {
			inUse = inUse || slices.Contains(urls, u)
		}
	}
	s.mu.RUnlock()
	if inUse {
		return nil, rpctypes.ErrGRPCPeerURLExist
	}
	data, err := json.Marshal(confContext{PeerURLs: urls})
	if err != nil {
		return nil, err
	}
	if err := s.proposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id, Context: data}); err != nil {
		return nil, err
	}
	return &pb.MemberAddResponse{Header: s.header(nil), Member: &pb.Member{ID: id, PeerURLs: urls}, Members: s.memberList()}, nil
}

// MemberRemove removes a voting member.
func (c *Cluster) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	s := c.s
	s.mu.RLock()
	_, exists := s.peers[r.ID]
	s.mu.RUnlock()
	if !exists {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	if err := s.proposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: r.ID}); err != nil {
		return nil, err
	}
	return &pb.MemberRemoveResponse{Header: s.header(nil), Members: s.memberList()}, nil
}
