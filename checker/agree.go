package checker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/faultline/faultline/history"
)

// AgreeChecker is the name in Result.Checker.
const AgreeChecker = "members-agree"

// Agree judges the hashes the members gave after the final phase (hashkv
// events): members that applied the same log hold the same keys, with the
// same history, at any revision they all have, compacted at the same
// revision. Two members that differ at one revision make the history
// invalid, whoever else answered. Otherwise a member of in.Members that was
// not asked or did not answer leaves it unknown, and so does a history
// without hashes (recorded before this check, or ended before its final
// phase).
func Agree(_ context.Context, in *Input) Result {
	events, members := in.Events, in.Members
	res := Result{Checker: AgreeChecker}
	asked := map[string]bool{}
	var missing []string
	// The first answer at each revision is what the others must match.
	first := map[int64]history.Event{}
	groups := map[int64][]string{}
	for _, e := range events {
		if e.Process != history.Nemesis || e.F != history.HashKV {
			continue
		}
		asked[e.Member] = true
		if e.Error != "" {
			missing = append(missing, e.Member+": "+e.Error)
			continue
		}
		groups[e.Revision] = append(groups[e.Revision], e.Member)
		f, ok := first[e.Revision]
		if !ok {
			first[e.Revision] = e
			continue
		}
		if e.Hash != f.Hash || e.CompactRevision != f.CompactRevision {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("at revision %d %s has hash %08x, compacted at %d; %s has %08x, compacted at %d",
				e.Revision, e.Member, e.Hash, e.CompactRevision, f.Member, f.Hash, f.CompactRevision))
		}
	}
	for _, m := range members {
		if !asked[m] {
			missing = append(missing, m+" was not asked for its hash")
		}
	}
	var compared []string
	for _, r := range slices.Sorted(maps.Keys(groups)) {
		f := first[r]
		compared = append(compared, fmt.Sprintf("%s at revision %d: hash %08x, compacted at %d", strings.Join(groups[r], ", "), r, f.Hash, f.CompactRevision))
	}
	switch {
	case len(res.Anomalies) > 0:
		res.Verdict = Invalid
		res.Summary = fmt.Sprintf("the members' keys diverge: %d hash(es) differ from another member's at the same revision", len(res.Anomalies))
	case len(asked) == 0:
		res.Verdict = Unknown
		res.Summary = "no member hashes were recorded: the history is older than this check, or the run ended before its final phase"
	case len(missing) > 0:
		res.Verdict = Unknown
		res.Summary = "not every member could be compared: " + strings.Join(missing, "; ")
		if len(compared) > 0 {
			res.Summary += " (the others: " + strings.Join(compared, "; ") + ")"
		}
	default:
		res.Verdict = Valid
		res.Summary = "the members agree: " + strings.Join(compared, "; ")
	}
	return res
}
