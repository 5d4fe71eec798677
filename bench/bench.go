// Package bench measures how fast a cluster takes writes: many clients
// putting fixed-size values as fast as they are acknowledged, with the
// latency of each put recorded.
package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Load is the put workload.
type Load struct {
	// Clients is how many concurrent writers there are; they share
	// Conns connections, as etcd's own benchmark tool does.
	Clients int
	Conns   int
	// ValueSize is the bytes in each value; keys are spread over Keys.
	ValueSize int
	Keys      int
	// Warmup is run first and not measured: connections and the store's
	// first allocations are not what a benchmark is after.
	Warmup   time.Duration
	Duration time.Duration
	// Timeout bounds a single put; a put that times out counts as an error.
	Timeout time.Duration
}

// Result is one measurement.
type Result struct {
	Puts       int64
	Errors     int64
	Seconds    float64
	Throughput float64 // acknowledged puts per second
	P50, P99   time.Duration
	Max        time.Duration
}

// Run drives the load through clients made by dial (one per connection)
// and measures the acknowledged puts after the warm-up.
func Run(ctx context.Context, l Load, dial func() (*clientv3.Client, error)) (Result, error) {
	conns := make([]*clientv3.Client, max(1, l.Conns))
	for i := range conns {
		c, err := dial()
		if err != nil {
			for _, d := range conns[:i] {
				d.Close()
			}
			return Result{}, err
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	value := string(make([]byte, l.ValueSize))
	warm, stop := time.Now().Add(l.Warmup), time.Now().Add(l.Warmup+l.Duration)
	hists := make([]*hdrhistogram.Histogram, l.Clients)
	errs := make([]int64, l.Clients)
	var wg sync.WaitGroup
	for i := range l.Clients {
		hists[i] = hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
		wg.Go(func() {
			cli := conns[i%len(conns)]
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for ctx.Err() == nil {
				start := time.Now()
				if start.After(stop) {
					return
				}
				pctx, cancel := context.WithTimeout(ctx, l.Timeout)
				_, err := cli.Put(pctx, fmt.Sprintf("bench/%d", r.IntN(l.Keys)), value)
				cancel()
				if start.Before(warm) {
					continue
				}
				if err != nil {
					errs[i]++
					continue
				}
				hists[i].RecordValue(max(1, time.Since(start).Microseconds()))
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	all := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	var res Result
	for i, h := range hists {
		all.Merge(h)
		res.Errors += errs[i]
	}
	res.Puts = all.TotalCount()
	res.Seconds = l.Duration.Seconds()
	res.Throughput = float64(res.Puts) / res.Seconds
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	res.P50, res.P99, res.Max = us(all.ValueAtQuantile(50)), us(all.ValueAtQuantile(99)), us(all.Max())
	return res, nil
}
