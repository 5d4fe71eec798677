package reports

import (
	"sort"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

// watchRecv is the F of a watch response in the history.
const watchRecv = "watch-recv"

// watchLag is how long watch events took to arrive.
type watchLag struct {
	Events int
	Millis checker.Distribution
}

// watchDelivery measures, for every event a watch delivered, the time from
// when its revision was first known to exist — the earliest completion of
// any other operation that saw that revision or a later one — to the
// event's arrival. The commit came no later than that, so this is a lower
// bound on the delivery lag. Events of revisions no operation saw are left
// out.
func watchDelivery(ops []history.Op) watchLag {
	type seen struct{ rev, at int64 }
	var known []seen
	for _, op := range ops {
		if op.F != watchRecv && op.Type() == history.OK && op.Complete.Revision > 0 {
			known = append(known, seen{op.Complete.Revision, op.Complete.Time})
		}
	}
	// Highest revision first, each holding the earliest time that revision
	// or a later one was seen.
	sort.Slice(known, func(i, j int) bool { return known[i].rev > known[j].rev })
	for i := 1; i < len(known); i++ {
		known[i].at = min(known[i].at, known[i-1].at)
	}
	firstKnown := func(rev int64) (int64, bool) {
		// The last entry with a revision at or above rev.
		i := sort.Search(len(known), func(i int) bool { return known[i].rev < rev })
		if i == 0 {
			return 0, false
		}
		return known[i-1].at, true
	}
	var lags []float64
	for _, op := range ops {
		if op.F != watchRecv || op.Type() != history.OK {
			continue
		}
		for _, ev := range op.Complete.WatchEvents {
			if at, ok := firstKnown(ev.KV.ModRevision); ok {
				lags = append(lags, max(0, float64(op.Complete.Time-at))/float64(time.Millisecond))
			}
		}
	}
	return watchLag{Events: len(lags), Millis: checker.Distribute(lags)}
}
