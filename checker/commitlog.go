package checker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// CommitLogChecker is the name in Result.Checker.
const CommitLogChecker = "commit-log"

// LogRead is the recorder's final read of the whole keyspace. The recorder
// of the commit log (run by the harness beside the workloads, recorded in a
// file of its own) follows each of its members with a watcher of the whole
// keyspace from revision 1, recorded as the watch workload records its
// watchers (WatchOpen, WatchRecv), and reads everything once at the end.
const LogRead = "log-read"

// logStreams reads the recorder's watches: as the watch checker reads
// watchers, with the recorder's read as the final read and no prefix of its
// own (the recorder sees every workload's keys, not all of which write
// values the checker knows).
var logStreams = streamConfig{checker: CommitLogChecker, open: WatchOpen, recv: WatchRecv, finalRead: LogRead}

// RecordedLog is the commit log the recorder's operations show: every
// change its watchers delivered and its final read found, and the
// revisions each watch session covered. A compaction between two sessions
// is a gap; a session that ended on an error and was reopened from the
// revision after the last one it covered loses nothing.
func RecordedLog(rec []history.Op) *CommitLog {
	st := newStreams(logStreams)
	st.parse(rec)
	log := &CommitLog{}
	for _, f := range st.sorted {
		log.Commits = append(log.Commits, Commit{Revision: f.rev, Key: f.key, Value: f.ev.KV.Value, Delete: f.ev.Type == "delete"})
	}
	for _, s := range st.sessions {
		if from, to := s.effectiveStart(), s.covered(); from > 0 && to >= from {
			log.Seen = append(log.Seen, RevSpan{from, to})
		}
	}
	return log
}

// CommitLogCheck checks the recorder's log (in.Recorded) against the
// history, so that the unknown outcomes it resolves rest on a log that is
// what it claims: each recorder's watcher must pass every check the watch
// checker makes of a watcher (ordered, unique, atomic; every change the
// history establishes — acknowledged writes, values read at their
// revisions, other watchers' events, the other recorders' — delivered over
// the revisions it claims to have covered; nothing at a revision another
// source says was something else; its view equal to its final read), and
// every watcher of the workloads must agree with the recorder's events as
// it agrees with the history's. Only what the recorder adds counts here:
// what the history shows wrong alone is its own checkers' to report. A
// disagreement means the store lost or invented a change (in its watch
// stream or in what it acknowledged), or the recorder is broken.
func CommitLogCheck(_ context.Context, in *Input) Result {
	start := time.Now()
	res := Result{Checker: CommitLogChecker}
	base := newStreams(logStreams)
	base.parse(in.Ops)
	base.run()
	st := newStreams(logStreams)
	st.parse(slices.Concat(in.Ops, in.Recorded))
	st.run()
	added := st.found.minus(&base.found)

	ours := map[string]bool{}
	for _, op := range in.Recorded {
		if op.F == WatchOpen {
			ours[op.Invoke.WatchID] = true
		}
	}
	var recorders []string
	var spans []revRange
	for _, s := range st.sessions {
		if !ours[s.watch] {
			continue
		}
		if s.n == 0 {
			recorders = append(recorders, s.watch)
		}
		if from, to := s.effectiveStart(), s.covered(); from > 0 && to >= from {
			spans = append(spans, revRange{from, to})
		}
	}
	covered := mergeRevisions(spans)
	what := fmt.Sprintf("%s (%s), revisions %s seen completely", plural(len(recorders), "recorder"), strings.Join(recorders, ", "), covered)
	if h := hashedAt(in.Events); len(covered) > 0 && h > covered[len(covered)-1].hi {
		// Not a disagreement: the recorder may not have caught up in time.
		what += fmt.Sprintf("; the members hashed their keys at revision %d, past the log's end", h)
	}
	switch {
	case len(added.order) > 0:
		res.Verdict = Invalid
		res.Summary = fmt.Sprintf("the recorder's commit log disagrees with the history: %s (%s). Either the store lost or invented a change, or the recorder is broken", added.summary(), what)
		res.Anomalies = added.list
	case len(covered) == 0:
		res.Verdict = Unknown
		res.Summary = "the recorder of the commit log saw no revision completely: nothing to compare"
	default:
		res.Verdict = Valid
		res.Summary = "the recorder's commit log agrees with the history: " + what
	}
	res.Seconds = time.Since(start).Seconds()
	return res
}

// hashedAt is the highest revision a member hashed its keys at after the
// final phase (history.HashKV), 0 if none did.
func hashedAt(events []history.Event) int64 {
	var h int64
	for _, e := range events {
		if e.Process == history.Nemesis && e.F == history.HashKV && e.Error == "" {
			h = max(h, e.Revision)
		}
	}
	return h
}

// minus is what a found that b did not, as the lines a result shows: each
// of a's lines not among b's, and per kind, when a counted more than both
// show, how many more.
func (a *anomalies) minus(b *anomalies) anomalies {
	old := map[string]bool{}
	for _, l := range b.list {
		old[l] = true
	}
	var out anomalies
	shown := map[string]int{}
	for _, l := range a.list {
		if old[l] {
			continue
		}
		kind, _, _ := strings.Cut(l, ": ")
		if shown[kind] == 0 {
			out.order = append(out.order, kind)
		}
		shown[kind]++
		out.list = append(out.list, l)
	}
	out.counts = map[string]int{}
	for _, k := range a.order {
		n := max(a.counts[k]-b.counts[k], shown[k])
		if n == 0 {
			continue
		}
		if shown[k] == 0 {
			out.order = append(out.order, k)
		}
		out.counts[k] = n
		if more := n - shown[k]; more > 0 {
			out.list = append(out.list, fmt.Sprintf("%s: %d more not shown", k, more))
		}
	}
	return out
}

// String is the set in words: "1..40, 52..90".
func (rs revisions) String() string {
	if len(rs) == 0 {
		return "none"
	}
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%d..%d", r.lo, r.hi))
	}
	return strings.Join(parts, ", ")
}
