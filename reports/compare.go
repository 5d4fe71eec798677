package reports

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

// KindCompare runs one test once per read mode; its page sets the modes
// side by side.
const KindCompare = "compare"

// modeColumn is one read mode's run on the comparison page.
type modeColumn struct {
	Mode, Link, Verdict string
	Checks              []check
	Reads               checker.OpStats
	// Reads invoked inside the fault windows and outside them, and how
	// many of those succeeded.
	DuringFault, Quiet availability
	Serializable       bool
	Staleness          checker.Staleness
	StalePercent       float64
}

type comparePage struct {
	Batch
	When    string
	Columns []modeColumn
}

// compareColumn reads one run of a comparison: its results, and from its
// history the reads' availability and staleness.
func compareColumn(dir, rel string) (modeColumn, error) {
	runDir := filepath.Join(dir, rel)
	r, err := rundir.Read(runDir)
	if err != nil {
		return modeColumn{}, err
	}
	events, err := history.ReadFile(filepath.Join(runDir, rundir.HistoryFile))
	if err != nil {
		return modeColumn{}, err
	}
	ops, err := history.Ops(events)
	if err != nil {
		return modeColumn{}, fmt.Errorf("%s: %w", runDir, err)
	}
	col := modeColumn{Mode: r.Config.ReadConsistency, Link: filepath.ToSlash(rel) + "/" + rundir.ReportFile, Verdict: verdictClass(r.Verdict)}
	for _, c := range r.Checks {
		col.Checks = append(col.Checks, checkRow(c))
	}
	// A serializable run's reads are its serializable ones.
	names := readOps
	if r.Config.ReadConsistency == "serializable" {
		names = []string{"kv-get-serializable"}
	}
	col.Reads, _ = opStats(r.Stats, names)
	var reads []history.Op
	for _, op := range ops {
		if isRead(op.F) {
			reads = append(reads, op)
		}
	}
	col.DuringFault, col.Quiet = splitAvailability(reads, history.Faults(events))
	if st := r.Stats.Staleness; st != nil {
		col.Serializable, col.Staleness = true, *st
		col.StalePercent = 100 * float64(st.Stale) / float64(st.Reads)
	}
	return col, nil
}

func isRead(f string) bool { return slices.Contains(readOps, f) }

// availability counts operations attempted and those that succeeded.
type availability struct{ OK, Tried int }

// Percent is the share that succeeded; -1 when none were tried.
func (a availability) Percent() float64 {
	if a.Tried == 0 {
		return -1
	}
	return 100 * float64(a.OK) / float64(a.Tried)
}

// splitAvailability splits operations by whether they were invoked inside
// a fault window, counting the ones that succeeded.
func splitAvailability(ops []history.Op, faults []history.Window) (inFault, quiet availability) {
	for _, op := range ops {
		a := &quiet
		for _, w := range faults {
			if op.Invoke.Time >= w.Start && (w.Stop < 0 || op.Invoke.Time <= w.Stop) {
				a = &inFault
				break
			}
		}
		a.Tried++
		if op.Type() == history.OK {
			a.OK++
		}
	}
	return inFault, quiet
}
