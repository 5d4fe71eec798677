package server

import (
	"context"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/api/v3/version"
)

// Maintenance implements the parts of etcd's Maintenance service that
// clients and the harness rely on.
type Maintenance struct {
	pb.UnimplementedMaintenanceServer
	s *Server
}

// MaintenanceService returns the Maintenance service.
func (s *Server) MaintenanceService() pb.MaintenanceServer { return &Maintenance{s: s} }

// Status reports this member's view of the cluster. It never waits for a
// leader, so it answers during elections (with Leader 0).
func (m *Maintenance) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	s := m.s
	size := s.ApproxSize()
	return &pb.StatusResponse{
		Header:           s.header(nil),
		Version:          version.Version,
		DbSize:           size,
		DbSizeInUse:      size,
		Leader:           s.node.Leader(),
		RaftIndex:        s.node.CommitIndex(),
		RaftTerm:         s.node.Term(),
		RaftAppliedIndex: s.node.AppliedIndex(),
		StorageVersion:   version.Version,
	}, nil
}

// Alarm reports no alarms: kvnode has no space quota.
func (m *Maintenance) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return &pb.AlarmResponse{Header: m.s.header(nil)}, nil
}

// Defragment is a no-op: the store lives in memory and the log is rewritten
// at every snapshot.
func (m *Maintenance) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	return &pb.DefragmentResponse{Header: m.s.header(nil)}, nil
}

// HashKV hashes the key versions between the compaction revision and a
// revision (see mvcc.Store.Hash), so members can be compared for divergence.
func (m *Maintenance) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	s := m.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	rev := r.Revision
	if rev == 0 {
		rev = s.kv.Rev()
	}
	h, err := s.kv.Hash(rev)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.HashKVResponse{
		Header:          s.header(nil),
		Hash:            h,
		CompactRevision: s.kv.CompactRev(),
		HashRevision:    rev,
	}, nil
}

// Cluster implements MemberList of etcd's Cluster service.
type Cluster struct {
	pb.UnimplementedClusterServer
	s *Server
}

// ClusterService returns the Cluster service.
func (s *Server) ClusterService() pb.ClusterServer { return &Cluster{s: s} }

// MemberList lists the static members with the client URLs each published.
func (c *Cluster) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.Linearizable {
		if err := c.s.linearize(ctx); err != nil {
			return nil, err
		}
	}
	return &pb.MemberListResponse{Header: c.s.header(nil), Members: c.s.memberList()}, nil
}

func (s *Server) memberList() []*pb.Member {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]uint64, 0, len(s.peers))
	for id := range s.peers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]*pb.Member, 0, len(ids))
	for _, id := range ids {
		rec := s.peers[id]
		pm := &pb.Member{ID: id, PeerURLs: rec.PeerURLs}
		// As etcd: a member that has not started yet has no name and
		// no client URLs.
		if urls, ok := s.members[id]; ok {
			pm.Name = rec.Name
			pm.ClientURLs = urls
		}
		out = append(out, pm)
	}
	return out
}

// MoveLeader hands leadership to another member; it must be sent to the
// leader, as in etcd.
func (m *Maintenance) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	s := m.s
	if s.node.Leader() != s.cfg.Self.ID {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	s.mu.RLock()
	_, known := s.peers[r.TargetID]
	s.mu.RUnlock()
	if !known || r.TargetID == s.cfg.Self.ID {
		return nil, rpctypes.ErrGRPCBadLeaderTransferee
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if err := s.node.TransferLeadership(ctx, r.TargetID); err != nil {
		return nil, s.ctxErr(ctx, err)
	}
	return &pb.MoveLeaderResponse{Header: s.header(nil)}, nil
}
