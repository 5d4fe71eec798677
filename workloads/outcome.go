package workloads

import (
	"context"
	"errors"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/faultline/faultline/history"
)

// outcome records an operation that returned err. It is a fail only when
// the error proves the operation did not take effect; anything else —
// above all a timeout or a lost connection — is info, since a write may
// have been committed even though its answer never arrived.
func outcome(err error, mutates bool) history.Event {
	e := history.Event{Type: history.Info, Error: err.Error()}
	if definite(err, mutates) {
		e.Type = history.Fail
	}
	return e
}

func definite(err error, mutates bool) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	code := codes.Unknown
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if s, ok := status.FromError(err); ok {
		code = s.Code()
	}
	switch code {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange,
		codes.ResourceExhausted, codes.PermissionDenied, codes.Unauthenticated, codes.NotFound:
		// The server refused the request before proposing it.
		return true
	case codes.Unavailable:
		// A refused connection never carried the request. Any other
		// unavailability (leader changed, timed out) may come after the
		// proposal, which only matters for operations that change state.
		return strings.Contains(err.Error(), "connection refused") || !mutates
	}
	return false
}
