package checker

import (
	"context"

	"github.com/faultline/faultline/checker/elle"
)

// WRChecker is the name in Result.Checker.
const WRChecker = "elle-wr"

// WRTxn is the wr workload's one operation: a transaction whose
// micro-operations are the invocation's Then, each a write of a value
// (Value, a decimal number unique per key) or a read of a key; on ok,
// Responses repeat them in order with each read's value in Value ("" when
// the key had none).
const WRTxn = "wr-txn"

// WR checks the wr workload's transactions as Elle checks a rw-register
// history (see package elle), against the model Append would use.
func WR(ctx context.Context, in *Input) Result {
	return checkTxns(ctx, in, WRChecker, WRTxn, elle.Register)
}
