package main

import (
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/bench"
	"github.com/faultline/faultline/compose"
)

func TestMedianAndRatios(t *testing.T) {
	ms := time.Millisecond
	kv := []bench.Result{{Throughput: 900, P50: 5 * ms, P99: 40 * ms}, {Throughput: 1200, P50: 4 * ms, P99: 90 * ms}, {Throughput: 1000, P50: 6 * ms, P99: 50 * ms}}
	et := []bench.Result{{Throughput: 500, P50: 8 * ms, P99: 100 * ms}, {Throughput: 500, P50: 8 * ms, P99: 100 * ms}, {Throughput: 500, P50: 8 * ms, P99: 100 * ms}}
	// Each measure's own median: 1000 puts/s, p50 5ms, p99 50ms.
	if m := median(kv); m.Throughput != 1000 || m.P50 != 5*ms || m.P99 != 50*ms {
		t.Fatalf("median = %+v", m)
	}
	etcd, _ := compose.Etcd("")
	var out strings.Builder
	printBench(&out, []string{label(compose.Kvnode()), label(etcd)}, [][]bench.Result{kv, et}, bench.Load{Clients: 64, Conns: 8, ValueSize: 256, Duration: 10 * time.Second}, 3)
	for _, want := range []string{"kvnode / etcd v3.6.16 (medians): throughput 2.00x, p50 0.62x, p99 0.50x", "median", "64 clients over 8 connections"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBenchDiskNeedsOneTarget: --disk compares one target with itself.
func TestBenchDiskNeedsOneTarget(t *testing.T) {
	code, err := benchCmd(t.Context(), []string{"--disk", "--targets", "kvnode,etcd"})
	if code != exitError || err == nil || !strings.Contains(err.Error(), "give --targets one target, not 2") {
		t.Fatalf("exit %d, %v", code, err)
	}
}
