package server

import (
	"bytes"
	"fmt"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/faultline/faultline/store/mvcc"
)

// The apply functions run under s.mu held for writing, on the Raft apply
// path: they must be deterministic, so every member computes the same state.

func attrSet(id uint64, name string, urls []string) *membershippb.ClusterMemberAttrSetRequest {
	return &membershippb.ClusterMemberAttrSetRequest{
		Member_ID:        id,
		MemberAttributes: &membershippb.Attributes{Name: name, ClientUrls: urls},
	}
}

// reader is what a Range reads from: the store, or a write txn in progress.
type reader interface {
	Range(key, end []byte, opts mvcc.RangeOptions) (mvcc.RangeResult, error)
}

// endTxn publishes t, keeps lease attachments in step, and returns its
// events for the watch hub.
func (s *Server) endTxn(t *mvcc.Txn) []*eventBatch {
	evs := t.End()
	if len(evs) == 0 {
		return nil
	}
	for _, e := range evs {
		s.leases.track(e)
	}
	return []*eventBatch{{rev: s.kv.Rev(), events: evs}}
}

func (s *Server) checkPut(t *mvcc.Txn, p *pb.PutRequest) error {
	if p.IgnoreValue || p.IgnoreLease {
		if t.Get(p.Key) == nil {
			return rpctypes.ErrGRPCKeyNotFound
		}
	}
	if p.Lease != 0 && !s.leases.exists(p.Lease) {
		return rpctypes.ErrGRPCLeaseNotFound
	}
	return nil
}

func (s *Server) applyPut(t *mvcc.Txn, p *pb.PutRequest) (*pb.PutResponse, error) {
	if err := s.checkPut(t, p); err != nil {
		return nil, err
	}
	return s.doPut(t, p), nil
}

func (s *Server) doPut(t *mvcc.Txn, p *pb.PutRequest) *pb.PutResponse {
	val, lease := p.Value, p.Lease
	prev := t.Get(p.Key)
	if prev != nil {
		if p.IgnoreValue {
			val = prev.Value
		}
		if p.IgnoreLease {
			lease = prev.Lease
		}
	}
	t.Put(p.Key, val, lease)
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{Revision: t.Rev()}}
	if p.PrevKv && prev != nil {
		resp.PrevKv = prev
	}
	return resp
}

func (s *Server) applyDelete(t *mvcc.Txn, d *pb.DeleteRangeRequest) *pb.DeleteRangeResponse {
	deleted := t.DeleteRange(d.Key, d.RangeEnd)
	resp := &pb.DeleteRangeResponse{Deleted: int64(len(deleted))}
	if d.PrevKv {
		resp.PrevKvs = deleted
	}
	rev := t.Rev()
	if len(deleted) == 0 {
		rev = t.ReadRev()
	}
	resp.Header = &pb.ResponseHeader{Revision: rev}
	return resp
}

func (s *Server) applyCompact(c *pb.CompactionRequest) result {
	if s.cfg.Bugs.DivergentCompact && s.highestID() {
		return result{&pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: s.kv.Rev()}}, nil}
	}
	if s.cfg.Bugs.PanicOnCompact {
		// A crash on a committed entry: every member applies it, and
		// replays it on restart, so it crashes again. The history sees only
		// timeouts; the member logs see the panic.
		panic(fmt.Sprintf("unsafe bug panic-on-compact: applying the compaction at revision %d", c.Revision))
	}
	// gofail: var compactBeforeApply struct{}
	if err := s.kv.Compact(c.Revision); err != nil {
		return result{nil, toGRPC(err)}
	}
	// gofail: var compactAfterApply struct{}
	return result{&pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: s.kv.Rev()}}, nil}
}

// highestID says whether this member has the highest ID of the voting
// membership.
func (s *Server) highestID() bool {
	for id := range s.peers {
		if id > s.cfg.Self.ID {
			return false
		}
	}
	return true
}

// applyTxn evaluates every compare (nested ones included) against the state
// before the txn, checks the chosen ops, then executes them, as etcd does: a
// txn that fails a check changes nothing.
func (s *Server) applyTxn(t *mvcc.Txn, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	path := comparePath(t, r)
	if _, err := s.checkTxn(t, r, path); err != nil {
		return nil, err
	}
	resp, _ := s.execTxn(t, r, path)
	rev := t.ReadRev()
	resp.Header.Revision = rev
	return resp, nil
}

func comparePath(t *mvcc.Txn, r *pb.TxnRequest) []bool {
	ok := applyCompares(t, r.Compare)
	path := []bool{ok}
	ops := r.Success
	if !ok {
		ops = r.Failure
	}
	for _, op := range ops {
		if tv, isTxn := op.Request.(*pb.RequestOp_RequestTxn); isTxn && tv.RequestTxn != nil {
			path = append(path, comparePath(t, tv.RequestTxn)...)
		}
	}
	return path
}

func (s *Server) checkTxn(t *mvcc.Txn, r *pb.TxnRequest, path []bool) (int, error) {
	ops := r.Success
	if !path[0] {
		ops = r.Failure
	}
	count := 0
	for _, op := range ops {
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			rv := tv.RequestRange.Revision
			if rv > s.kv.Rev() {
				return 0, rpctypes.ErrGRPCFutureRev
			}
			if rv > 0 && rv < s.kv.CompactRev() {
				return 0, rpctypes.ErrGRPCCompacted
			}
		case *pb.RequestOp_RequestPut:
			if err := s.checkPut(t, tv.RequestPut); err != nil {
				return 0, err
			}
		case *pb.RequestOp_RequestTxn:
			n, err := s.checkTxn(t, tv.RequestTxn, path[1:])
			if err != nil {
				return 0, err
			}
			count += n + 1
			path = path[n+1:]
		}
	}
	return count, nil
}

func (s *Server) execTxn(t *mvcc.Txn, r *pb.TxnRequest, path []bool) (*pb.TxnResponse, int) {
	ops := r.Success
	if !path[0] {
		ops = r.Failure
	}
	resp := &pb.TxnResponse{Succeeded: path[0], Header: &pb.ResponseHeader{}, Responses: make([]*pb.ResponseOp, 0, len(ops))}
	count := 0
	for _, op := range ops {
		var out pb.ResponseOp
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			rr, err := doRange(t, tv.RequestRange)
			if behind := s.kv.Rev() - 1; s.cfg.Bugs.TxnReadBehind && !isReadOnly(r) && tv.RequestRange.Revision == 0 &&
				behind > 0 && behind >= s.kv.CompactRev() {
				q := *tv.RequestRange
				q.Revision = behind
				rr, err = doRange(s.kv, &q)
			}
			if err != nil {
				// Checked before executing; keep going with an empty answer.
				rr = &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: t.ReadRev()}}
			}
			out.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case *pb.RequestOp_RequestPut:
			out.Response = &pb.ResponseOp_ResponsePut{ResponsePut: s.doPut(t, tv.RequestPut)}
		case *pb.RequestOp_RequestDeleteRange:
			out.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: s.applyDelete(t, tv.RequestDeleteRange)}
		case *pb.RequestOp_RequestTxn:
			sub, n := s.execTxn(t, tv.RequestTxn, path[1:])
			count += n + 1
			path = path[n+1:]
			out.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: sub}
		}
		resp.Responses = append(resp.Responses, &out)
	}
	return resp, count
}

func applyCompares(t *mvcc.Txn, cs []*pb.Compare) bool {
	for _, c := range cs {
		if !applyCompare(t, c) {
			return false
		}
	}
	return true
}

// applyCompare follows etcd: a compare over a range must hold for every key
// in it; on a missing key a value compare fails and the others compare
// against zero.
func applyCompare(t *mvcc.Txn, c *pb.Compare) bool {
	rr, err := t.Range(c.Key, c.RangeEnd, mvcc.RangeOptions{})
	if err != nil {
		return false
	}
	if len(rr.KVs) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	for _, kv := range rr.KVs {
		if !compareKV(c, kv) {
			return false
		}
	}
	return true
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var r int
	switch c.Target {
	case pb.Compare_VALUE:
		v, ok := c.TargetUnion.(*pb.Compare_Value)
		var want []byte
		if ok {
			want = v.Value
		}
		r = bytes.Compare(kv.Value, want)
	case pb.Compare_CREATE:
		r = cmpInt(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		r = cmpInt(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		r = cmpInt(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		r = cmpInt(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return r == 0
	case pb.Compare_NOT_EQUAL:
		return r != 0
	case pb.Compare_GREATER:
		return r > 0
	case pb.Compare_LESS:
		return r < 0
	}
	return false
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// doRange executes a RangeRequest with etcd's filtering, sorting and limit
// rules.
func doRange(rd reader, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	limit := r.Limit
	if r.SortOrder != pb.RangeRequest_NONE || r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		limit = 0 // fetch everything, sort and cut afterwards
	}
	if limit > 0 {
		limit++ // one extra to know whether there is more
	}
	rr, err := rd.Range(r.Key, r.RangeEnd, mvcc.RangeOptions{Rev: r.Revision, Limit: limit, CountOnly: r.CountOnly})
	if err != nil {
		return nil, toGRPC(err)
	}
	kvs := rr.KVs
	prune := func(drop func(*mvccpb.KeyValue) bool) {
		j := 0
		for _, kv := range kvs {
			if !drop(kv) {
				kvs[j] = kv
				j++
			}
		}
		kvs = kvs[:j]
	}
	if r.MaxModRevision != 0 {
		prune(func(kv *mvccpb.KeyValue) bool { return kv.ModRevision > r.MaxModRevision })
	}
	if r.MinModRevision != 0 {
		prune(func(kv *mvccpb.KeyValue) bool { return kv.ModRevision < r.MinModRevision })
	}
	if r.MaxCreateRevision != 0 {
		prune(func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision > r.MaxCreateRevision })
	}
	if r.MinCreateRevision != 0 {
		prune(func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision < r.MinCreateRevision })
	}
	order := r.SortOrder
	if r.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	} else if r.SortTarget == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND {
		order = pb.RangeRequest_NONE // already in key order
	}
	if order != pb.RangeRequest_NONE {
		var less func(a, b *mvccpb.KeyValue) bool
		switch r.SortTarget {
		case pb.RangeRequest_KEY:
			less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Key, b.Key) < 0 }
		case pb.RangeRequest_VERSION:
			less = func(a, b *mvccpb.KeyValue) bool { return a.Version < b.Version }
		case pb.RangeRequest_CREATE:
			less = func(a, b *mvccpb.KeyValue) bool { return a.CreateRevision < b.CreateRevision }
		case pb.RangeRequest_MOD:
			less = func(a, b *mvccpb.KeyValue) bool { return a.ModRevision < b.ModRevision }
		case pb.RangeRequest_VALUE:
			less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Value, b.Value) < 0 }
		default:
			return nil, rpctypes.ErrGRPCInvalidSortOption
		}
		if order == pb.RangeRequest_DESCEND {
			asc := less
			less = func(a, b *mvccpb.KeyValue) bool { return asc(b, a) }
		}
		sort.SliceStable(kvs, func(i, j int) bool { return less(kvs[i], kvs[j]) })
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rr.Rev}, Count: int64(rr.Count)}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		resp.More = true
	}
	if r.KeysOnly {
		out := make([]*mvccpb.KeyValue, len(kvs))
		for i, kv := range kvs {
			c := *kv
			c.Value = nil
			out[i] = &c
		}
		kvs = out
	}
	resp.Kvs = kvs
	return resp, nil
}
