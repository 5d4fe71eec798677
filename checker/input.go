package checker

import (
	"context"
	"io/fs"
	"sync"
	"time"

	"github.com/faultline/faultline/history"
)

// Func is a checker: every checker has this shape, whether it judges one
// workload's operations or the run as a whole.
type Func func(ctx context.Context, in *Input) Result

// RunChecks are the checkers every run gets, whatever its workloads: the
// cluster came back whole after the faults, its members agree on their
// data, and their logs show no trouble.
var RunChecks = []Func{Recovery, Agree, Logs}

// Input is everything a checker may draw on. It is built once per check of
// a run and shared by every checker, so what one of them derives from the
// history (the kv history, the serializable reads' staleness) is derived
// once and reused by the others and by the statistics.
type Input struct {
	// Events is the history as recorded; Ops pairs its client operations.
	Events []history.Event
	Ops    []history.Op
	// Faults are the nemesis windows (history.Faults of Events).
	Faults []history.Window
	// Members names the cluster's members: the logs and hashes that must
	// be there.
	Members []string
	// Files is the run's folder, LogsDir the members' logs inside it; nil
	// when there is no folder (the logs are then unknown).
	Files   fs.FS
	LogsDir string
	// Visualize returns where a checker may write a visualization of its
	// failing partitions, named by file; nil: nowhere.
	Visualize func(file string) string
	// Timeout bounds each search; past it the verdict is unknown. 0: no
	// bound but ctx.
	Timeout time.Duration
	// MemoryLimit bounds the process's heap during each search, in bytes;
	// past it the verdict is unknown. 0: DefaultMemoryLimit.
	MemoryLimit uint64
	// OtherCompactor says that something besides the kv workload (a
	// nemesis fault) compacts at revisions the history does not record, so
	// a read refused as compacted is not checked against the kv workload's
	// own compactions.
	OtherCompactor bool
	// CommitLog is what the cluster committed as a recorder beside the
	// history saw it, if there was one; the history's own evidence is used
	// either way.
	CommitLog *CommitLog
	// Recorded are the operations of that recorder (RecordedLog makes the
	// CommitLog of them), kept apart from Ops, which are the workloads';
	// CommitLogCheck compares the two.
	Recorded []history.Op
	// NoResolve switches off resolving the kv and register writes of
	// unknown outcome from the commit log (see resolve), to compare.
	NoResolve bool

	resolveOnce sync.Once
	resolved    *resolution
	kvOnce      sync.Once
	kv          *kvHistory
	staleOnce   sync.Once
	stale       Result
	staleness   Staleness
}

// NewInput is the input of a history with nothing else known of its run;
// the caller fills in the rest.
func NewInput(events []history.Event, ops []history.Op) *Input {
	return &Input{Events: events, Ops: ops, Faults: history.Faults(events)}
}

// kvHistory is the kv workload's operations prepared for the search,
// built on first use.
func (in *Input) kvHistory() *kvHistory {
	in.kvOnce.Do(func() { in.kv = buildKV(in.Ops, in.resolution()) })
	return in.kv
}

// resolution is what the commit log says of the writes of unknown outcome,
// worked out on first use; nil when switched off.
func (in *Input) resolution() *resolution {
	in.resolveOnce.Do(func() {
		if !in.NoResolve {
			in.resolved = resolve(in.Ops, in.CommitLog)
		}
	})
	return in.resolved
}

// serializable is the check of the serializable reads and reads of past
// revisions, and their staleness, computed on first use.
func (in *Input) serializable() (Result, Staleness) {
	in.staleOnce.Do(func() { in.stale, in.staleness = serializableReads(in) })
	return in.stale, in.staleness
}

// search bounds one search by in.Timeout, if any, and by the memory
// limit; stopReason says which stopped it.
func (in *Input) search(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := context.WithCancelCause(ctx)
	limit := in.MemoryLimit
	if limit == 0 {
		limit = DefaultMemoryLimit()
	}
	restore := guardMemory(ctx, stop, limit)
	if in.Timeout > 0 {
		tctx, cancel := context.WithTimeout(ctx, in.Timeout)
		return tctx, func() { cancel(); stop(nil); restore() }
	}
	return ctx, func() { stop(nil); restore() }
}

// visualization is where file goes, or "" when nowhere.
func (in *Input) visualization(file string) string {
	if in.Visualize == nil {
		return ""
	}
	return in.Visualize(file)
}
