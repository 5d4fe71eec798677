package member

import (
	"context"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// requireLeader honours clientv3.WithRequireLeader: a request that carries
// the "hasleader" metadata fails fast with ErrNoLeader when this member knows
// of no leader, instead of waiting for one.
func requireLeader(hasLeader func() bool) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	wants := func(ctx context.Context) bool {
		md, ok := metadata.FromIncomingContext(ctx)
		if !ok {
			return false
		}
		vs := md.Get(rpctypes.MetadataRequireLeaderKey)
		return len(vs) > 0 && vs[0] == rpctypes.MetadataHasLeader
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if wants(ctx) && !hasLeader() {
			return nil, rpctypes.ErrGRPCNoLeader
		}
		return handler(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if wants(ss.Context()) && !hasLeader() {
			return rpctypes.ErrGRPCNoLeader
		}
		return handler(srv, ss)
	}
	return unary, stream
}
