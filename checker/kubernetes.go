package checker

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// KubernetesChecker is the name in Result.Checker.
const KubernetesChecker = "kubernetes"

// Operation names of the kubernetes workload (workloads/kubernetes.go
// records them). Writers do what the API server's etcd3 storage does:
// create is a txn that puts only if the key's create_revision is 0, update
// reads the object and then puts only if its mod_revision is unchanged,
// delete likewise. Informers list the prefix in pages at one revision and
// then watch from that revision + 1. K8sPrefix is where the pods are kept.
const (
	K8sCreate    = "k8s-create"
	K8sGet       = "k8s-get"
	K8sUpdate    = "k8s-update"
	K8sDelete    = "k8s-delete"
	K8sList      = "k8s-list"
	K8sWatchOpen = "k8s-watch-open"
	K8sWatchRecv = "k8s-watch-recv"
	K8sRead      = "k8s-read"
	K8sPrefix    = "/registry/pods/"
)

func init() { known(k8sFacts, K8sCreate, K8sGet, K8sUpdate, K8sDelete, K8sList, K8sRead) }

func isK8sOp(f string) bool {
	switch f {
	case K8sCreate, K8sGet, K8sUpdate, K8sDelete, K8sList, K8sWatchOpen, K8sWatchRecv, K8sRead:
		return true
	}
	return false
}

// Kubernetes checks the kubernetes workload: what the API server relies on.
//
//   - no two creates of one key both succeed unless a delete came between
//     (create is a txn on create_revision == 0);
//   - no update or delete succeeds on a stale mod_revision: between the
//     revision it compared and its own, nothing changed the key;
//   - every informer's list is consistent: all pages at the list's
//     revision, keys in order, none changed after that revision, none
//     missing that the history says existed then;
//   - every informer's watch (from the list's revision + 1) keeps the watch
//     guarantees (see Watch), and list plus watch converge to the final
//     read.
func Kubernetes(_ context.Context, in *Input) Result {
	ops, start := in.Ops, time.Now()
	if why := nothingToCheck(ops, "kubernetes", isK8sOp); why != "" {
		return Result{Checker: KubernetesChecker, Verdict: Unknown, Summary: why, Seconds: time.Since(start).Seconds()}
	}
	lists := map[string]*informerList{}
	st := newStreams(streamConfig{
		checker: KubernetesChecker, open: K8sWatchOpen, recv: K8sWatchRecv, finalRead: K8sRead, prefix: K8sPrefix,
		initial: func(watch string) (int64, map[string]history.KV, bool) {
			l := lists[watch]
			if l == nil || !l.complete {
				return 0, nil, false
			}
			return l.rev + 1, maps.Clone(l.view), true
		},
	})
	st.parse(ops)
	for i := range ops {
		if ops[i].F == K8sList {
			id := ops[i].Invoke.WatchID
			if lists[id] == nil {
				lists[id] = &informerList{id: id, view: map[string]history.KV{}}
			}
			lists[id].page(st, &ops[i])
		}
	}
	for _, l := range lists {
		if l.complete {
			l.checkAgainstFacts(st)
		}
	}
	st.run()
	n := checkConditionalWrites(st, ops)
	res := st.result()
	if res.Verdict == Unknown {
		res.Verdict, res.Summary = Valid, ""
	}
	what := fmt.Sprintf("%s, %s, %s", plural(n.creates, "successful create"), plural(n.updates, "successful update"), plural(n.deletes, "successful delete"))
	what += fmt.Sprintf(", %s", plural(len(lists), "informer list"))
	switch res.Verdict {
	case Valid:
		res.Summary = "no double create, no stale update, informers consistent and converged: " + what
		if len(st.sessions) > 0 {
			res.Summary += "; " + strings.TrimPrefix(st.result().Summary, "watches ordered, unique, atomic, reliable and resumable: ")
		}
	default:
		res.Summary += "; " + what
	}
	res.Seconds = time.Since(start).Seconds()
	return res
}

// k8sFacts turns the kubernetes workload's writes and reads into facts.
func k8sFacts(op *history.Op, st *streams) {
	inv, c := op.Invoke, op.Complete
	for _, kv := range c.KVs {
		st.addFact(fact{rev: kv.ModRevision, key: kv.Key, ev: history.WatchEvent{Type: "put", KV: kv}, source: opSource{op, describeWriteOp}, full: true})
	}
	switch op.F {
	case K8sCreate, K8sUpdate:
		typ := c.Type
		if typ == history.OK && !c.Succeeded {
			typ = history.Fail // its compare failed: it wrote nothing
		}
		w := valueWrite{key: inv.Key, typ: typ, op: op, describe: describeK8sOp}
		if typ == history.OK {
			w.rev = c.Revision
			st.addFact(fact{rev: c.Revision, key: inv.Key, ev: history.WatchEvent{Type: "put", KV: history.KV{Key: inv.Key, Value: inv.Value, ModRevision: c.Revision}}, source: opSource{op, describeK8sOp}})
			st.wholly(c.Revision)
		}
		st.addValue(inv.Value, w)
	case K8sDelete:
		if c.Type == history.OK && c.Succeeded {
			st.addFact(fact{rev: c.Revision, key: inv.Key, ev: history.WatchEvent{Type: "delete", KV: history.KV{Key: inv.Key, ModRevision: c.Revision}}, source: opSource{op, describeK8sOp}})
			st.wholly(c.Revision)
		}
	}
}

func describeK8sOp(op history.Op) string {
	s := fmt.Sprintf("%s of %s by process %d at %s", op.F, quoteKey(op.Invoke.Key), op.Process, seconds(op.Invoke.Time))
	if op.F != K8sCreate && op.Invoke.ExpectRevision > 0 {
		s += fmt.Sprintf(" if mod_revision == %d", op.Invoke.ExpectRevision)
	}
	switch {
	case op.Type() != history.OK:
		s += " (" + string(op.Type()) + ")"
	case op.Complete.Succeeded:
		s += fmt.Sprintf(" (succeeded at revision %d)", op.Complete.Revision)
	default:
		s += fmt.Sprintf(" (compare failed at revision %d)", op.Complete.Revision)
	}
	return s
}

// informerList is one informer's list: its pages, read at one revision.
type informerList struct {
	id       string
	rev      int64
	view     map[string]history.KV
	last     string
	complete bool
	broken   bool
	desc     string
}

func (l *informerList) page(st *streams, op *history.Op) {
	if l.complete || l.broken {
		return
	}
	c := op.Complete
	if c.Type != history.OK {
		l.broken = true
		return
	}
	if l.rev == 0 {
		l.rev = c.Revision
		l.desc = fmt.Sprintf("informer %s's list at revision %d (process %d at %s)", l.id, l.rev, op.Process, seconds(op.Invoke.Time))
	} else if op.Invoke.StartRevision != l.rev {
		st.found.add("list", "%s: a later page was read at revision %d", l.desc, op.Invoke.StartRevision)
	}
	for _, kv := range c.KVs {
		if kv.Key <= l.last {
			st.found.add("list", "%s: key %s out of order after %s", l.desc, quoteKey(kv.Key), quoteKey(l.last))
		}
		if kv.ModRevision > l.rev {
			st.found.add("list", "%s: key %s has mod_revision %d, after the list's revision", l.desc, quoteKey(kv.Key), kv.ModRevision)
		}
		if op.Invoke.Limit > 0 && int64(len(c.KVs)) > op.Invoke.Limit {
			st.found.add("list", "%s: a page of %d keys exceeds the limit %d", l.desc, len(c.KVs), op.Invoke.Limit)
		}
		l.last = kv.Key
		l.view[kv.Key] = kv
	}
	if !c.More || len(c.KVs) == 0 {
		l.complete = true
	}
}

// checkAgainstFacts compares a complete list with what the history says
// each key was at the list's revision.
func (l *informerList) checkAgainstFacts(st *streams) {
	for key := range st.byKey {
		if !strings.HasPrefix(key, K8sPrefix) {
			continue
		}
		prev := st.previous(key, l.rev+1)
		kv, listed := l.view[key]
		switch {
		case prev == nil:
		case prev.ev.Type == "put" && !listed:
			st.found.add("list", "%s lacks key %s, though %s put it at revision %d", l.desc, quoteKey(key), prev.source, prev.rev)
		case prev.ev.Type == "delete" && listed && kv.ModRevision < prev.rev:
			st.found.add("list", "%s has key %s from revision %d, though %s deleted it at revision %d", l.desc, quoteKey(key), kv.ModRevision, prev.source, prev.rev)
		case prev.ev.Type == "put" && listed && kv.ModRevision < prev.rev:
			st.found.add("list", "%s has key %s from revision %d, though %s changed it at revision %d", l.desc, quoteKey(key), kv.ModRevision, prev.source, prev.rev)
		}
	}
}

type k8sCounts struct{ creates, updates, deletes int }

// checkConditionalWrites finds creates that succeeded on an existing key
// and updates or deletes that succeeded on a stale mod_revision.
func checkConditionalWrites(st *streams, ops []history.Op) k8sCounts {
	var n k8sCounts
	// Deletes of unknown outcome may have removed a key between two
	// creates; they are keyed by the mod_revision they compared.
	maybeDeleted := map[factKey]bool{}
	for _, op := range ops {
		if op.F == K8sDelete && op.Type() == history.Info {
			maybeDeleted[factKey{op.Invoke.ExpectRevision, op.Invoke.Key}] = true
		}
	}
	for _, op := range ops {
		c := op.Complete
		if c.Type != history.OK || !c.Succeeded {
			continue
		}
		key, rev := op.Invoke.Key, c.Revision
		prev := st.previous(key, rev)
		switch op.F {
		case K8sCreate:
			n.creates++
			if prev != nil && prev.ev.Type == "put" && !maybeDeleted[factKey{prev.rev, key}] {
				st.found.add("double create", "%s, but the key existed: %s at revision %d (%s), and no delete came between",
					describeK8sOp(op), describeEvent(prev.ev), prev.rev, prev.source)
			}
		case K8sUpdate, K8sDelete:
			if op.F == K8sUpdate {
				n.updates++
			} else {
				n.deletes++
			}
			expect := op.Invoke.ExpectRevision
			switch {
			case prev == nil:
			case prev.rev > expect:
				st.found.add("stale update", "%s, but the key had changed since: %s at revision %d (%s)",
					describeK8sOp(op), describeEvent(prev.ev), prev.rev, prev.source)
			case prev.rev == expect && prev.ev.Type == "delete":
				st.found.add("stale update", "%s, but revision %d deleted the key (%s)", describeK8sOp(op), prev.rev, prev.source)
			}
		}
	}
	return n
}
