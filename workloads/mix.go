package workloads

import (
	"context"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/history"
)

// Mix runs several workloads at once against one cluster and one history
// (faultline run --workload register,kv). The workers are split evenly in
// the order the workloads are named, the first ones taking one more when
// the split is uneven; with fewer workers than workloads, workloads share
// clients. A rate limit is split in the same proportion. Each workload
// keeps its own operation names, key prefix and process ids, so each
// checker reads only its own operations.
type Mix struct {
	parts []Workload
}

// Parts are the mixed workloads in the order named.
func (m *Mix) Parts() []Workload { return m.parts }

// Split says how many of n workers each of k workloads gets.
func Split(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
		out[i] = max(out[i], 1)
	}
	return out
}

// Run runs every part on its share of the clients until ctx is done.
func (m *Mix) Run(ctx context.Context, clients []*clientv3.Client, rec *history.Recorder) {
	var wg sync.WaitGroup
	next := 0
	for i, n := range Split(len(clients), len(m.parts)) {
		share := make([]*clientv3.Client, n)
		for j := range share {
			share[j] = clients[next%len(clients)]
			next++
		}
		p := m.parts[i]
		if o := optionsOf(p); o != nil && o.Rate > 0 {
			o.Rate = o.Rate * float64(n) / float64(max(len(clients), n))
		}
		wg.Go(func() { p.Run(ctx, share, rec) })
	}
	wg.Wait()
}

// Counts sums the parts' live counts.
func (m *Mix) Counts() *Counts {
	c := &Counts{}
	for _, p := range m.parts {
		pc := p.Counts()
		c.OK.Add(pc.OK.Load())
		c.Fail.Add(pc.Fail.Load())
		c.Info.Add(pc.Info.Load())
	}
	return c
}

// options gives Mix access to a workload's embedded Options.
func (o *Options) options() *Options { return o }

func optionsOf(w Workload) *Options {
	if x, ok := w.(interface{ options() *Options }); ok {
		return x.options()
	}
	return nil
}
