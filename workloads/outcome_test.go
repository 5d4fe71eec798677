package workloads

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/faultline/faultline/history"
)

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		mutates bool
		want    history.Type
	}{
		{"timeout of a write", context.DeadlineExceeded, true, history.Info},
		{"timeout of a read", fmt.Errorf("get: %w", context.DeadlineExceeded), false, history.Info},
		{"leader changed during a write", rpctypes.ErrLeaderChanged, true, history.Info},
		{"write timed out on the server", rpctypes.ErrTimeout, true, history.Info},
		{"leader changed during a read", rpctypes.ErrLeaderChanged, false, history.Fail},
		{"request too large", rpctypes.ErrRequestTooLarge, true, history.Fail},
		{"too many requests", rpctypes.ErrTooManyRequests, true, history.Fail},
		{"connection refused", status.Error(codes.Unavailable, "dial tcp 10.0.0.1:2379: connect: connection refused"), true, history.Fail},
		{"connection reset", status.Error(codes.Unavailable, "connection reset by peer"), true, history.Info},
		{"unknown error", errors.New("EOF"), true, history.Info},
	} {
		if got := outcome(tc.err, tc.mutates).Type; got != tc.want {
			t.Errorf("%s: %v is %s, want %s", tc.name, tc.err, got, tc.want)
		}
	}
}
