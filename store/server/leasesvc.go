package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"
)

// Lease implements etcd's Lease service. Grant and Revoke go through Raft;
// KeepAlive and TimeToLive are answered by the leader, which alone tracks
// expiry, so followers forward them over the peer HTTP port.
type Lease struct {
	pb.UnimplementedLeaseServer
	s *Server
}

// LeaseService returns the Lease service.
func (s *Server) LeaseService() pb.LeaseServer { return &Lease{s: s} }

// LeaseGrant creates a lease.
func (l *Lease) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if r.TTL > maxLeaseTTL {
		return nil, rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	req := *r
	for req.ID == 0 {
		req.ID = int64(rand.Uint64() >> 1)
	}
	return proposeFor[*pb.LeaseGrantResponse](ctx, l.s, &pb.InternalRaftRequest{LeaseGrant: &req})
}

// LeaseRevoke deletes a lease and its keys.
func (l *Lease) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	return proposeFor[*pb.LeaseRevokeResponse](ctx, l.s, &pb.InternalRaftRequest{LeaseRevoke: r})
}

// LeaseKeepAlive renews leases for as long as the stream lasts.
func (l *Lease) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	return eachRequest(stream.Recv, func(req *pb.LeaseKeepAliveRequest) error {
		ttl, err := l.s.keepAlive(stream.Context(), req.ID)
		if err != nil {
			return err
		}
		return stream.Send(&pb.LeaseKeepAliveResponse{Header: l.s.header(nil), ID: req.ID, TTL: ttl})
	})
}

// LeaseTimeToLive reports a lease's remaining time; TTL -1 means unknown.
func (l *Lease) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	info, err := l.s.leaseInfo(ctx, r.ID, r.Keys)
	if err != nil {
		return nil, err
	}
	if !info.Found {
		return &pb.LeaseTimeToLiveResponse{Header: l.s.header(nil), ID: r.ID, TTL: -1}, nil
	}
	return &pb.LeaseTimeToLiveResponse{Header: l.s.header(nil), ID: r.ID, TTL: info.Remaining, GrantedTTL: info.Granted, Keys: info.Keys}, nil
}

// LeaseLeases lists every lease.
func (l *Lease) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	l.s.mu.RLock()
	recs := l.s.leases.export()
	l.s.mu.RUnlock()
	out := &pb.LeaseLeasesResponse{Header: l.s.header(nil)}
	for _, r := range recs {
		out.Leases = append(out.Leases, &pb.LeaseStatus{ID: r.ID})
	}
	return out, nil
}

type leaseInfo struct {
	Found     bool
	Granted   int64
	Remaining int64
	Keys      [][]byte
}

// keepAlive renews a lease on the leader and returns its TTL (0 if unknown).
func (s *Server) keepAlive(ctx context.Context, id int64) (int64, error) {
	var ttl int64
	err := s.onLeader(ctx, func() { ttl = s.renew(id) }, "/kvnode/lease/renew?id="+strconv.FormatInt(id, 10), &ttl)
	return ttl, err
}

func (s *Server) leaseInfo(ctx context.Context, id int64, keys bool) (leaseInfo, error) {
	var info leaseInfo
	err := s.onLeader(ctx, func() {
		info.Granted, info.Remaining, info.Keys, info.Found = s.timeToLive(id, keys)
	}, fmt.Sprintf("/kvnode/lease/ttl?id=%d&keys=%t", id, keys), &info)
	return info, err
}

// onLeader runs local if this member leads, else asks the leader over the
// peer port and decodes its JSON answer into out.
func (s *Server) onLeader(ctx context.Context, local func(), path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	for {
		lead := s.node.Leader()
		if lead == s.cfg.Self.ID {
			if err := s.caughtUp(ctx); err != nil {
				return s.ctxErr(ctx, err)
			}
			local()
			return nil
		}
		if lead != raft.None {
			err := s.askPeer(ctx, lead, path, out)
			if err == nil {
				return nil
			}
			s.log.Debug("forwarding to leader", "path", path, "err", err)
		}
		select {
		case <-ctx.Done():
			return s.ctxErr(ctx, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// caughtUp waits until the leader has applied every entry it knows to be
// committed. Leases live in the applied state, and a grant made through a
// follower can be applied and acknowledged there before here: answering a
// renewal of it with "not found" makes the client give the lease up (etcd
// fixed the same, etcd-io/etcd#6978).
func (s *Server) caughtUp(ctx context.Context) error {
	return s.node.WaitApplied(ctx, s.node.CommitIndex())
}

func (s *Server) askPeer(ctx context.Context, id uint64, path string, out any) error {
	s.mu.RLock()
	urls := s.peers[id].PeerURLs
	s.mu.RUnlock()
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+path, nil)
		if err != nil {
			return fmt.Errorf("build request: %w", err)
		}
		resp, err := s.peerClient().Do(req)
		if err != nil {
			return fmt.Errorf("ask leader: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusMisdirectedRequest {
			return errors.New("not the leader any more")
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ask leader: %s", resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return fmt.Errorf("leader %x is not a known member", id)
}

func (s *Server) peerClient() *http.Client {
	if s.cfg.PeerClient != nil {
		return s.cfg.PeerClient
	}
	return http.DefaultClient
}

// PeerHandler serves the leader-only lease calls followers forward.
func (s *Server) PeerHandler() http.Handler {
	mux := http.NewServeMux()
	leader := func(h func(w http.ResponseWriter, q url.Values)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if s.node.Leader() != s.cfg.Self.ID {
				http.Error(w, "not leader", http.StatusMisdirectedRequest)
				return
			}
			if err := s.caughtUp(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			h(w, r.URL.Query())
		}
	}
	mux.Handle("/kvnode/lease/renew", leader(func(w http.ResponseWriter, q url.Values) {
		id, _ := strconv.ParseInt(q.Get("id"), 10, 64)
		json.NewEncoder(w).Encode(s.renew(id))
	}))
	mux.HandleFunc("/kvnode/members", func(w http.ResponseWriter, r *http.Request) {
		s.mu.RLock()
		info := MembersInfo{ClusterID: s.cfg.Cluster.ID, Members: s.peerURLs()}
		s.mu.RUnlock()
		json.NewEncoder(w).Encode(info)
	})
	mux.Handle("/kvnode/lease/ttl", leader(func(w http.ResponseWriter, q url.Values) {
		id, _ := strconv.ParseInt(q.Get("id"), 10, 64)
		var info leaseInfo
		info.Granted, info.Remaining, info.Keys, info.Found = s.timeToLive(id, q.Get("keys") == "true")
		json.NewEncoder(w).Encode(info)
	}))
	return mux
}
