package checker

import (
	"context"
	"fmt"

	"github.com/faultline/faultline/history"
)

// RecoveryChecker is the name in Result.Checker.
const RecoveryChecker = "recovery"

// Recovery judges the final phase: once every fault was healed, the
// cluster must come back whole (one leader, every member answering, all at
// the same applied index). A cluster that does not has failed, whatever
// its operations say. A history without a final phase (a run interrupted
// before it) is unknown.
func Recovery(_ context.Context, in *Input) Result {
	res := Result{Checker: RecoveryChecker, Verdict: Unknown, Summary: "the history has no final phase: whether the cluster came back whole after the faults is unknown"}
	var end int64
	for _, e := range in.Events {
		if e.IsFinal() {
			res = Result{Checker: RecoveryChecker, Verdict: Valid}
			if e.Error != "" {
				res.Verdict = Invalid
				res.Summary = e.Error
				res.Anomalies = []string{fmt.Sprintf("at %s: %s", seconds(e.Time), e.Error)}
			} else {
				res.Summary = fmt.Sprintf("the cluster was whole again %s after the final heal", seconds(e.Time-end))
			}
		}
		if e.Process != history.Nemesis {
			end = max(end, e.Time)
		}
	}
	return res
}
