package server

import (
	"bytes"
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/faultline/faultline/store/mvcc"
)

// maxTxnOps is etcd's default --max-txn-ops.
const maxTxnOps = 128

// KV implements etcd's KV service.
type KV struct {
	pb.UnimplementedKVServer
	s *Server
}

// KVService returns the KV service.
func (s *Server) KVService() pb.KVServer { return &KV{s: s} }

// linearize waits until local state reflects every write committed before
// the call, unless the stale-read bug is on.
func (s *Server) linearize(ctx context.Context) error {
	if s.cfg.Bugs.StaleRead {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if err := s.node.ReadIndex(ctx); err != nil {
		if ctx.Err() != nil {
			return s.ctxErr(ctx, ctx.Err())
		}
		return toGRPC(err)
	}
	return nil
}

// Range reads keys.
func (k *KV) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	if !r.Serializable {
		if err := k.s.linearize(ctx); err != nil {
			return nil, err
		}
	}
	return readLocal(k.s, func() (*pb.RangeResponse, error) { return doRange(k.s.kv, r) })
}

// Put writes one key.
func (k *KV) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPut(r); err != nil {
		return nil, err
	}
	return proposeFor[*pb.PutResponse](ctx, k.s, &pb.InternalRaftRequest{Put: r})
}

// DeleteRange deletes keys.
func (k *KV) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if len(r.Key) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	return proposeFor[*pb.DeleteRangeResponse](ctx, k.s, &pb.InternalRaftRequest{DeleteRange: r})
}

// Txn runs a transaction. A read-only one is served locally after
// ReadIndex, as etcd does; anything that writes goes through Raft.
func (k *KV) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxn(r, maxTxnOps); err != nil {
		return nil, err
	}
	if isReadOnly(r) {
		if err := k.s.linearize(ctx); err != nil {
			return nil, err
		}
		return readLocal(k.s, func() (*pb.TxnResponse, error) { return k.s.applyTxn(k.s.kv.Write(), r) })
	}
	return proposeFor[*pb.TxnResponse](ctx, k.s, &pb.InternalRaftRequest{Txn: r})
}

// Compact discards history up to a revision.
func (k *KV) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	return proposeFor[*pb.CompactionResponse](ctx, k.s, &pb.InternalRaftRequest{Compaction: r})
}

func checkRange(r *pb.RangeRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

func checkPut(r *pb.PutRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

// checkTxn validates a txn before it is proposed, so a bad one never
// reaches the log.
func checkTxn(r *pb.TxnRequest, maxOps int) error {
	if len(r.Compare) > maxOps || len(r.Success) > maxOps || len(r.Failure) > maxOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if err := checkOp(op, maxOps); err != nil {
				return err
			}
		}
		if _, _, err := branchWrites(ops); err != nil {
			return err
		}
	}
	return nil
}

func checkOp(op *pb.RequestOp, maxOps int) error {
	switch tv := op.Request.(type) {
	case *pb.RequestOp_RequestRange:
		return checkRange(tv.RequestRange)
	case *pb.RequestOp_RequestPut:
		return checkPut(tv.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		if len(tv.RequestDeleteRange.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	case *pb.RequestOp_RequestTxn:
		return checkTxn(tv.RequestTxn, maxOps)
	}
	return nil
}

type keyRange struct{ key, end []byte }

func (kr keyRange) contains(k []byte) bool {
	if len(kr.end) == 0 {
		return bytes.Equal(kr.key, k)
	}
	if bytes.Compare(k, kr.key) < 0 {
		return false
	}
	return (len(kr.end) == 1 && kr.end[0] == 0) || bytes.Compare(k, kr.end) < 0
}

// branchWrites collects the keys put and ranges deleted by one branch and
// reports a key written twice (etcd's duplicate key rule). The two branches
// of a nested txn may overlap each other, as only one of them runs.
func branchWrites(ops []*pb.RequestOp) (map[string]struct{}, []keyRange, error) {
	puts := map[string]struct{}{}
	var dels []keyRange
	addPut := func(k string) error {
		if _, dup := puts[k]; dup {
			return rpctypes.ErrGRPCDuplicateKey
		}
		puts[k] = struct{}{}
		return nil
	}
	for _, op := range ops {
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestPut:
			if err := addPut(string(tv.RequestPut.Key)); err != nil {
				return nil, nil, err
			}
		case *pb.RequestOp_RequestDeleteRange:
			dels = append(dels, keyRange{tv.RequestDeleteRange.Key, tv.RequestDeleteRange.RangeEnd})
		case *pb.RequestOp_RequestTxn:
			union := map[string]struct{}{}
			for _, sub := range [][]*pb.RequestOp{tv.RequestTxn.Success, tv.RequestTxn.Failure} {
				p, d, err := branchWrites(sub)
				if err != nil {
					return nil, nil, err
				}
				for k := range p {
					union[k] = struct{}{}
				}
				dels = append(dels, d...)
			}
			for k := range union {
				if err := addPut(k); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	for k := range puts {
		for _, d := range dels {
			if d.contains([]byte(k)) {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
		}
	}
	return puts, dels, nil
}

func isReadOnly(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			switch tv := op.Request.(type) {
			case *pb.RequestOp_RequestPut, *pb.RequestOp_RequestDeleteRange:
				return false
			case *pb.RequestOp_RequestTxn:
				if !isReadOnly(tv.RequestTxn) {
					return false
				}
			}
		}
	}
	return true
}

var _ reader = (*mvcc.Store)(nil)
var _ reader = (*mvcc.Txn)(nil)
