package integration

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// BenchmarkPut measures put throughput and latency against a 3-member
// cluster of kvnode processes (fsync on): 64 clients, 256-byte values.
// Set KVNODE_BENCH_ENDPOINTS=host:port,... to run the same load against
// another cluster (for example etcd) instead.
func BenchmarkPut(b *testing.B) {
	const clients = 64
	var eps []string
	if e := os.Getenv("KVNODE_BENCH_ENDPOINTS"); e != "" {
		eps = strings.Split(e, ",")
	} else {
		t := &testing.T{}
		pc := newProcCluster(t, 3)
		defer func() {
			for i := range pc.procs {
				pc.kill(i)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		pc.leader(ctx)
		cancel()
		eps = pc.urls
	}
	clis := make([]*clientv3.Client, clients)
	for i := range clis {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{eps[i%len(eps)]}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		defer cli.Close()
		clis[i] = cli
	}
	value := strings.Repeat("v", 256)
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				t0 := time.Now()
				if _, err := clis[i].Put(context.Background(), fmt.Sprintf("k%d", n%1000), value); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "puts/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}
