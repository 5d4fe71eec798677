// Package workloads generates client operations against the store under
// test and records each one's invocation and completion in the history.
package workloads

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

// Workload drives operations through etcd clients and records them.
//
// Each worker owns one client. Worker w starts as process w; after an info
// it continues as process w+len(clients), and so on, so that no process
// ever has two operations open. Workloads mixed in one run use their own
// operation names and key prefixes, so each checker can pick its own.
// A workload's name is its Spec's.
type Workload interface {
	Run(ctx context.Context, clients []*clientv3.Client, rec *history.Recorder)
	Counts() *Counts
}

// Options are the knobs every workload shares.
type Options struct {
	// Keys is how many keys are in use at once.
	Keys int
	// OpsPerKey bounds the operations on one key before a fresh key
	// replaces it (workloads that check keys one by one use it).
	OpsPerKey int
	// OpTimeout bounds each operation; one that runs out is recorded as
	// info, because it may still take effect.
	OpTimeout time.Duration
	// Rate caps operations per second over all workers; 0 means no cap.
	Rate float64
	// Members names the member behind each member ID seen in response
	// headers, so the history says who served an operation.
	Members map[uint64]string
	// MemberClients are one client per member, by name, each knowing only
	// that member, for actors that must stay on their member whatever the
	// workers' clients are (the watch workload's pinned watchers).
	MemberClients map[string]*clientv3.Client
	// ReadConsistency is linearizable, serializable or mixed (each read
	// picks one at random); workloads that read through Get follow it, and
	// the read-only transactions of append and wr.
	ReadConsistency string
	// CompactInterval is how often the kv workload compacts at a recent
	// revision; 0 never.
	CompactInterval time.Duration
	// Seed decides every worker's random choices (see rand).
	Seed int64
}

// rand is the random source of one worker: worker i of the named role
// (a workload, or one kind of actor in it). It follows from the seed, the
// role and i alone, so a run with the same seed makes each worker choose
// the same way again; what the store answers, and when, may still differ.
func (o Options) rand(role string, i int) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", role, i)
	return rand.New(rand.NewPCG(uint64(o.Seed), h.Sum64()))
}

// Spec is one workload, as Jepsen's workload map has it: what it is
// called, how its operations are generated and how they are checked. Its
// operation names are declared once, in its checker's file, and used by
// both. Each workload's file registers its Spec; nothing else needs to
// know it exists.
type Spec struct {
	Name string
	New  func(Options) Workload
	// Check judges the workload's operations in a history that may hold
	// other workloads' too.
	Check checker.Func
}

var specs = map[string]Spec{}

// register adds a workload; each workload's file calls it from init.
func register(s Spec) {
	if _, dup := specs[s.Name]; dup {
		panic("workloads: " + s.Name + " registered twice")
	}
	specs[s.Name] = s
}

// Lookup returns the workloads a --workload value names: one name, or a
// comma-separated list of them (a mix), each once.
func Lookup(names string) ([]Spec, error) {
	var out []Spec
	for _, name := range strings.Split(names, ",") {
		name = strings.TrimSpace(name)
		s, ok := specs[name]
		switch {
		case !ok && strings.Contains(names, ","):
			return nil, fmt.Errorf("unknown workload %q in %q: want one of %v", name, names, Names())
		case !ok:
			return nil, fmt.Errorf("unknown workload %q: want one of %v", name, Names())
		case slices.ContainsFunc(out, func(o Spec) bool { return o.Name == name }):
			return nil, fmt.Errorf("workload %q named twice in %q", name, names)
		}
		out = append(out, s)
	}
	return out, nil
}

// New returns the named workload.
//
// A comma-separated list of names is a mix: the workloads run together and
// share the workers (see Mix).
func New(names string, o Options) (Workload, error) {
	ss, err := Lookup(names)
	if err != nil {
		return nil, err
	}
	if len(ss) == 1 {
		return ss[0].New(o), nil
	}
	m := &Mix{}
	for _, s := range ss {
		m.parts = append(m.parts, s.New(o))
	}
	return m, nil
}

// Names lists the workloads New knows.
func Names() []string {
	return slices.Sorted(maps.Keys(specs))
}

// processes hands out a workload's process ids from its base: one per
// worker, and a fresh one after each info.
type processes struct{ next atomic.Int64 }

func (p *processes) from(base int64)      { p.next.Store(base) }
func (p *processes) new() history.Process { return history.Process(p.next.Add(1) - 1) }

// Counts are live totals for the status line.
type Counts struct {
	OK, Fail, Info atomic.Int64
}

func (c *Counts) add(t history.Type) {
	switch t {
	case history.OK:
		c.OK.Add(1)
	case history.Fail:
		c.Fail.Add(1)
	case history.Info:
		c.Info.Add(1)
	}
}

// run starts one worker per client, each calling its step function until
// ctx is done, no faster than Rate allows over all of them.
func (o Options) run(ctx context.Context, clients []*clientv3.Client, worker func(w int, cli *clientv3.Client) func(context.Context)) {
	var tick <-chan time.Time
	if o.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
		defer t.Stop()
		tick = t.C
	}
	var wg sync.WaitGroup
	for w, cli := range clients {
		step := worker(w, cli)
		wg.Go(func() {
			for ctx.Err() == nil {
				if tick != nil {
					select {
					case <-ctx.Done():
						return
					case <-tick:
					}
				}
				step(ctx)
			}
		})
	}
	wg.Wait()
}
