package server

import (
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/status"

	"github.com/faultline/faultline/store/mvcc"
	"github.com/faultline/faultline/store/raftnode"
)

// toGRPC maps internal errors to the etcd errors clients know how to handle.
func toGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, mvcc.ErrCompacted):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, mvcc.ErrFutureRev):
		return rpctypes.ErrGRPCFutureRev
	case errors.Is(err, raftnode.ErrStopped):
		return rpctypes.ErrGRPCStopped
	case errors.Is(err, raftnode.ErrReadTimeout):
		return rpctypes.ErrGRPCTimeout
	}
	return err
}
