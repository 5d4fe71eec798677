package checker

import (
	"fmt"

	"github.com/faultline/faultline/history"
)

// kvLeases checks the leases the kv workload's puts attached: every read
// that returns a value must show the lease of the put that wrote it (0 for
// none), since values are unique. Expiry is the lease workload's to check;
// the kv workload's lease outlives the run.
func kvLeases(ops []history.Op) (checked int, anomalies []string) {
	type write struct {
		lease int64
		op    *history.Op
	}
	written := map[string]write{}
	for i := range ops {
		op := &ops[i]
		if op.F == KVPut && op.Type() != history.Fail {
			written[op.Invoke.Value] = write{op.Invoke.Lease, op}
		}
	}
	see := func(op *history.Op, kv history.KV) {
		w, ok := written[kv.Value]
		if !ok || kv.Value == "" {
			return
		}
		checked++
		if kv.Lease != w.lease {
			anomalies = append(anomalies, fmt.Sprintf(
				"%s by process %d at %s read %s = %q with lease %d, but the put that wrote it (process %d at %s) attached lease %d",
				op.F, op.Process, seconds(op.Invoke.Time), kv.Key, kv.Value, kv.Lease, w.op.Process, seconds(w.op.Invoke.Time), w.lease))
		}
	}
	for i := range ops {
		op := &ops[i]
		if op.Type() != history.OK || op.Invoke.KeysOnly {
			continue
		}
		for _, kv := range op.Complete.KVs {
			see(op, kv)
		}
		if op.Complete.Prev != nil {
			see(op, *op.Complete.Prev)
		}
	}
	return checked, anomalies
}
