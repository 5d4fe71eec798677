package workloads

import "github.com/faultline/faultline/checker"

// The wr workload is Txns over registers: each transaction reads keys and
// writes unique values to them in one unguarded etcd Txn, and
// checker.WR checks the history as Elle checks a rw-register one.
func init() {
	register(Spec{Name: "wr", New: func(o Options) Workload { return newTxns(o, checker.WRTxn) }, Check: checker.WR})
}
