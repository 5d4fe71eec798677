package checker

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// A search whose states multiply (porcupine's cache keeps a bit per
// operation for each) can fill the machine's memory within a minute, long
// before its timeout, and take the run's results down with it. So every
// search also stops, unknown, when the process's heap passes a limit.

// ErrMemory is the cause of a search stopped at the memory limit.
type ErrMemory struct{ Limit uint64 }

func (e ErrMemory) Error() string {
	if e.Limit < 1<<30 {
		return fmt.Sprintf("checker stopped at its memory limit of %d MiB", e.Limit>>20)
	}
	return fmt.Sprintf("checker stopped at its memory limit of %.1f GiB", float64(e.Limit)/(1<<30))
}

// DefaultMemoryLimit is half the machine's memory (4 GiB when it cannot be
// read): the other half is left to the rest of the machine.
func DefaultMemoryLimit() uint64 {
	if total := memTotal(); total > 0 {
		return total / 2
	}
	return 4 << 30
}

// memTotal is the machine's memory in bytes, from /proc/meminfo; 0 when
// unknown.
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// liveSample is what heapBytes reads: the heap the last collection found
// live. Garbage not yet collected does not count, or a check would stop
// for what an earlier one left behind.
const liveSample = "/gc/heap/live:bytes"

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: liveSample}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// guardMemory cancels ctx with ErrMemory once the live heap passes limit,
// looking at once and then every 100ms until ctx is done. Until then the
// runtime's soft memory limit is held a quarter above limit, so that the
// garbage a growing search leaves between collections (as much as the
// live heap, by default) cannot take the process far past it; it returns
// what restores the soft limit.
func guardMemory(ctx context.Context, cancel context.CancelCauseFunc, limit uint64) (restore func()) {
	soft := int64(min(limit+limit/4, math.MaxInt64/2))
	prev := debug.SetMemoryLimit(-1)
	restore = func() {}
	if soft < prev {
		debug.SetMemoryLimit(soft)
		restore = func() {
			// Another search may have set its own since; leave that one.
			if debug.SetMemoryLimit(-1) == soft {
				debug.SetMemoryLimit(prev)
			}
		}
	}
	if heapBytes() > limit {
		cancel(ErrMemory{limit})
		return restore
	}
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if heapBytes() > limit {
					cancel(ErrMemory{limit})
					return
				}
			}
		}
	}()
	return restore
}
