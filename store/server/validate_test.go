package server

import (
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/faultline/faultline/store/membership"
)

func putOp(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("v")}}}
}

func delOp(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}}
}

func txnOp(success, failure []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: success, Failure: failure}}}
}

func TestCheckTxn(t *testing.T) {
	many := make([]*pb.RequestOp, maxTxnOps+1)
	for i := range many {
		many[i] = putOp(fmt.Sprint(i))
	}
	tests := []struct {
		name string
		req  *pb.TxnRequest
		want error
	}{
		{"ok", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("a"), putOp("b")}}, nil},
		{"too many ops", &pb.TxnRequest{Success: many}, rpctypes.ErrGRPCTooManyOps},
		{"duplicate put", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("a"), putOp("a")}}, rpctypes.ErrGRPCDuplicateKey},
		{"put inside deleted range", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("b"), delOp("a", "c")}}, rpctypes.ErrGRPCDuplicateKey},
		{"same key in both branches", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("a")}, Failure: []*pb.RequestOp{putOp("a")}}, nil},
		{"nested branches may overlap", &pb.TxnRequest{Success: []*pb.RequestOp{txnOp([]*pb.RequestOp{putOp("a")}, []*pb.RequestOp{putOp("a")})}}, nil},
		{"nested duplicates outer", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("a"), txnOp([]*pb.RequestOp{putOp("a")}, nil)}}, rpctypes.ErrGRPCDuplicateKey},
		{"empty key", &pb.TxnRequest{Success: []*pb.RequestOp{putOp("")}}, rpctypes.ErrGRPCEmptyKey},
		{"empty compare key", &pb.TxnRequest{Compare: []*pb.Compare{{}}}, rpctypes.ErrGRPCEmptyKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkTxn(tt.req, maxTxnOps); got != tt.want {
				t.Errorf("checkTxn = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckPut(t *testing.T) {
	tests := []struct {
		req  *pb.PutRequest
		want error
	}{
		{&pb.PutRequest{Key: []byte("a")}, nil},
		{&pb.PutRequest{}, rpctypes.ErrGRPCEmptyKey},
		{&pb.PutRequest{Key: []byte("a"), Value: []byte("x"), IgnoreValue: true}, rpctypes.ErrGRPCValueProvided},
		{&pb.PutRequest{Key: []byte("a"), Lease: 1, IgnoreLease: true}, rpctypes.ErrGRPCLeaseProvided},
	}
	for i, tt := range tests {
		if got := checkPut(tt.req); got != tt.want {
			t.Errorf("%d: checkPut = %v, want %v", i, got, tt.want)
		}
	}
}

func testServer(t testing.TB) *Server {
	c, err := membership.Parse("a=http://127.0.0.1:1", "t")
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Cluster: c, Self: c.Members[0]})
}

// FuzzTxn: any txn a client can send is either rejected by validation or
// applied without panicking, and a rejected or failing one changes nothing.
func FuzzTxn(f *testing.F) {
	seed := &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VALUE, TargetUnion: &pb.Compare_Value{Value: []byte("v")}}},
		Success: []*pb.RequestOp{putOp("a"), delOp("b", "c"), txnOp([]*pb.RequestOp{putOp("z")}, nil)},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: 2, SortTarget: 4}}}},
	}
	data, _ := seed.Marshal()
	f.Add(data)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r pb.TxnRequest
		if err := r.Unmarshal(data); err != nil {
			return
		}
		s := testServer(t)
		s.mu.Lock()
		defer s.mu.Unlock()
		before := s.kv.Rev()
		if err := checkTxn(&r, maxTxnOps); err != nil {
			return
		}
		tx := s.kv.Write()
		if _, err := s.applyTxn(tx, &r); err != nil {
			if tx.End() != nil || s.kv.Rev() != before {
				t.Fatalf("a rejected txn changed the store")
			}
			return
		}
		tx.End()
	})
}
