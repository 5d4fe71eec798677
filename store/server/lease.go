package server

import (
	"context"
	"sort"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// maxLeaseTTL is etcd's upper bound on a lease TTL, in seconds.
const maxLeaseTTL = 9000000000

// leases is the replicated lease table. Which leases exist and which keys
// they hold is state-machine state; when a lease expires is local to the
// leader, which turns expiry into a LeaseRevoke through Raft.
type leases struct {
	m      map[int64]*lease
	keyOf  map[string]int64 // key -> lease it is attached to
	expiry map[int64]time.Time
}

type lease struct {
	ID   int64
	TTL  int64
	keys map[string]struct{}
}

type leaseRecord struct {
	ID   int64
	TTL  int64
	Keys []string
}

func newLeases() *leases {
	return &leases{m: map[int64]*lease{}, keyOf: map[string]int64{}, expiry: map[int64]time.Time{}}
}

func (ls *leases) exists(id int64) bool { _, ok := ls.m[id]; return ok }

// track keeps key attachments in step with a change to the store.
func (ls *leases) track(e *mvccpb.Event) {
	key := string(e.Kv.Key)
	if old, ok := ls.keyOf[key]; ok {
		if l := ls.m[old]; l != nil {
			delete(l.keys, key)
		}
		delete(ls.keyOf, key)
	}
	if e.Type == mvccpb.PUT && e.Kv.Lease != 0 {
		if l := ls.m[e.Kv.Lease]; l != nil {
			l.keys[key] = struct{}{}
			ls.keyOf[key] = e.Kv.Lease
		}
	}
}

func (ls *leases) export() []leaseRecord {
	out := make([]leaseRecord, 0, len(ls.m))
	for _, l := range ls.m {
		r := leaseRecord{ID: l.ID, TTL: l.TTL}
		for k := range l.keys {
			r.Keys = append(r.Keys, k)
		}
		sort.Strings(r.Keys)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (ls *leases) restore(recs []leaseRecord) {
	ls.m = map[int64]*lease{}
	ls.keyOf = map[string]int64{}
	ls.expiry = map[int64]time.Time{}
	now := time.Now()
	for _, r := range recs {
		l := &lease{ID: r.ID, TTL: r.TTL, keys: map[string]struct{}{}}
		for _, k := range r.Keys {
			l.keys[k] = struct{}{}
			ls.keyOf[k] = r.ID
		}
		ls.m[r.ID] = l
		ls.expiry[r.ID] = now.Add(time.Duration(r.TTL) * time.Second)
	}
}

func (s *Server) minLeaseTTL() int64 {
	// etcd: a lease must outlive an election, so that a new leader can
	// receive keepalives before revoking it.
	et := s.cfg.ElectionTimeout
	ttl := int64((3*et/2 + time.Second - 1) / time.Second)
	if ttl < 1 {
		ttl = 1
	}
	return ttl
}

func (s *Server) applyLeaseGrant(r *pb.LeaseGrantRequest) result {
	if s.leases.exists(r.ID) {
		return result{nil, rpctypes.ErrGRPCLeaseExist}
	}
	ttl := r.TTL
	if min := s.minLeaseTTL(); ttl < min {
		ttl = min
	}
	s.leases.m[r.ID] = &lease{ID: r.ID, TTL: ttl, keys: map[string]struct{}{}}
	s.leases.expiry[r.ID] = time.Now().Add(time.Duration(ttl) * time.Second)
	return result{&pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: s.kv.Rev()}, ID: r.ID, TTL: ttl}, nil}
}

// applyLeaseRevoke deletes the lease and its keys in one revision. It
// returns a nil response when the lease does not exist.
func (s *Server) applyLeaseRevoke(r *pb.LeaseRevokeRequest) (any, []*eventBatch) {
	l := s.leases.m[r.ID]
	if l == nil {
		return nil, nil
	}
	keys := make([]string, 0, len(l.keys))
	for k := range l.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t := s.kv.Write()
	for _, k := range keys {
		t.DeleteRange([]byte(k), nil)
	}
	events := s.endTxn(t)
	delete(s.leases.m, r.ID)
	delete(s.leases.expiry, r.ID)
	return &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: s.kv.Rev()}}, events
}

// renew extends a lease on the leader; it returns the TTL or 0 if the lease
// is unknown.
func (s *Server) renew(id int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.leases.m[id]
	if l == nil {
		return 0
	}
	s.leases.expiry[id] = time.Now().Add(time.Duration(l.TTL) * time.Second)
	return l.TTL
}

// timeToLive reports a lease's granted TTL, remaining seconds and keys as the
// leader sees them; ok is false if the lease is unknown.
func (s *Server) timeToLive(id int64, withKeys bool) (granted, remaining int64, keys [][]byte, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := s.leases.m[id]
	if l == nil {
		return 0, 0, nil, false
	}
	rem := time.Until(s.leases.expiry[id])
	remaining = int64((rem + time.Second - 1) / time.Second)
	if remaining < 0 {
		remaining = 0
	}
	if withKeys {
		for k := range l.keys {
			keys = append(keys, []byte(k))
		}
		sort.Slice(keys, func(i, j int) bool { return string(keys[i]) < string(keys[j]) })
	}
	return l.TTL, remaining, keys, true
}

// leaseLoop revokes expired leases while this member leads. A member that
// becomes leader first gives every lease a full TTL, since it cannot know
// when the old leader last saw a keepalive.
func (s *Server) leaseLoop(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var leadingTerm uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if s.node == nil || s.node.Leader() != s.cfg.Self.ID {
			leadingTerm = 0
			continue
		}
		now := time.Now()
		if term := s.node.Term(); term != leadingTerm {
			leadingTerm = term
			s.mu.Lock()
			for id, l := range s.leases.m {
				s.leases.expiry[id] = now.Add(time.Duration(l.TTL) * time.Second)
			}
			s.mu.Unlock()
			continue
		}
		var expired []int64
		s.mu.RLock()
		for id, l := range s.leases.m {
			exp := s.leases.expiry[id]
			if s.cfg.Bugs.LeaseEarly {
				exp = exp.Add(-time.Duration(l.TTL) * time.Second * 2 / 3)
			}
			if now.After(exp) {
				expired = append(expired, id)
			}
		}
		s.mu.RUnlock()
		for _, id := range expired {
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := s.propose(pctx, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
			cancel()
			if err != nil {
				s.log.Debug("revoking expired lease", "lease", id, "err", err)
			}
		}
	}
}
