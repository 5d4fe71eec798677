package checker

import (
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/history"
)

// Stats summarises the client operations of a history, per operation name
// and for all of them together ("all").
type Stats struct {
	// Seconds is the span of the history, first invocation to last completion.
	Seconds float64   `json:"seconds"`
	Ops     []OpStats `json:"ops"`
	// Staleness is how far behind the serializable reads were; nil when
	// there were none.
	Staleness *Staleness `json:"staleness,omitempty"`
}

// OpStats counts one operation's outcomes and measures its latency.
type OpStats struct {
	F    string `json:"f"`
	OK   int    `json:"ok"`
	Fail int    `json:"fail"`
	Info int    `json:"info"`
	// Throughput is completed-ok operations per second.
	Throughput float64 `json:"throughput"`
	// Latency is over ok operations; fail and info latencies say more about
	// timeouts than about the store.
	Latency Percentiles `json:"latency_ms"`
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// All is the name of the row that sums every operation.
const All = "all"

// Summarise computes Stats from the input's operations.
func Summarise(in *Input) Stats {
	ops := in.Ops
	type acc struct {
		s    OpStats
		hist *hdrhistogram.Histogram
	}
	by := map[string]*acc{}
	get := func(f string) *acc {
		a, ok := by[f]
		if !ok {
			// 1µs to 10 minutes at 3 significant digits.
			a = &acc{s: OpStats{F: f}, hist: hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)}
			by[f] = a
		}
		return a
	}
	var first, last int64 = -1, 0
	for _, op := range ops {
		if first < 0 || op.Invoke.Time < first {
			first = op.Invoke.Time
		}
		if !op.Pending() && op.Complete.Time > last {
			last = op.Complete.Time
		}
		for _, a := range []*acc{get(op.F), get(All)} {
			switch op.Type() {
			case history.OK:
				a.s.OK++
				_ = a.hist.RecordValue(max(1, op.Latency()/int64(time.Microsecond)))
			case history.Fail:
				a.s.Fail++
			default:
				a.s.Info++
			}
		}
	}
	var st Stats
	if first >= 0 && last > first {
		st.Seconds = float64(last-first) / float64(time.Second)
	}
	for _, a := range by {
		if st.Seconds > 0 {
			a.s.Throughput = float64(a.s.OK) / st.Seconds
		}
		ms := func(q float64) float64 { return float64(a.hist.ValueAtQuantile(q)) / 1000 }
		a.s.Latency = Percentiles{P50: ms(50), P90: ms(90), P99: ms(99), P999: ms(99.9), Max: float64(a.hist.Max()) / 1000}
		st.Ops = append(st.Ops, a.s)
	}
	sort.Slice(st.Ops, func(i, j int) bool {
		// "all" last, the rest by name.
		if (st.Ops[i].F == All) != (st.Ops[j].F == All) {
			return st.Ops[j].F == All
		}
		return st.Ops[i].F < st.Ops[j].F
	})
	if _, stale := in.serializable(); stale.Reads > 0 {
		st.Staleness = &stale
	}
	return st
}
