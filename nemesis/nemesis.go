// Package nemesis injects faults into a running cluster on a schedule and
// records when each one started and was healed.
package nemesis

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
)

// Cluster is what faults act on; *compose.Cluster is one.
type Cluster interface {
	Leader(ctx context.Context) (*compose.Member, error)
	Kill(ctx context.Context, m *compose.Member) error
	Start(ctx context.Context, m *compose.Member) error
}

// Fault is one kind of failure. Start injects it and says which members it
// hit; Heal undoes it.
type Fault interface {
	Name() string
	Start(ctx context.Context, c Cluster) ([]*compose.Member, error)
	Heal(ctx context.Context, c Cluster) error
}

// Parse returns the fault a --nemesis name asks for; "none" is nil.
func Parse(name string) (Fault, error) {
	switch name {
	case "none":
		return nil, nil
	case "kill-leader":
		return &KillLeader{}, nil
	}
	return nil, fmt.Errorf("unknown nemesis %q: want kill-leader or none", name)
}

// Schedule alternates quiet and fault windows: Interval of quiet, then
// the fault for Duration, then heal. Jitter spreads each window by up to
// that fraction either way, so faults do not fall in lockstep with
// anything periodic in the store.
type Schedule struct {
	Interval time.Duration
	Duration time.Duration
	Jitter   float64
}

// Nemesis runs one fault on a schedule.
type Nemesis struct {
	Fault    Fault
	Schedule Schedule
	Cluster  Cluster
	Recorder *history.Recorder

	mu    sync.Mutex
	state string
	count int
}

// State is a short description for the status line.
func (n *Nemesis) State() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == "" {
		return "quiet"
	}
	return n.state
}

// Count is how many times the fault has been started.
func (n *Nemesis) Count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.count
}

// Run injects the fault until ctx is done, and heals it before returning
// even then, so that the cluster is whole again for the final reads.
func (n *Nemesis) Run(ctx context.Context) {
	for {
		if !sleep(ctx, n.jittered(n.Schedule.Interval)) {
			return
		}
		if !n.once(ctx) {
			return
		}
	}
}

// once runs one fault window; it returns false when ctx ended it.
func (n *Nemesis) once(ctx context.Context) bool {
	name := n.Fault.Name()
	hit, err := n.Fault.Start(ctx, n.Cluster)
	if err != nil {
		// A fault that could not start (no leader to kill just now) is
		// logged and tried again in the next window.
		slog.Warn("nemesis could not start", "fault", name, "err", err)
		return ctx.Err() == nil
	}
	nodes := names(hit)
	n.Recorder.Record(history.Event{Type: history.Info, Process: history.Nemesis, F: history.Start, Fault: name, Nodes: nodes})
	n.set(name+" "+strings.Join(nodes, ","), 1)
	alive := sleep(ctx, n.jittered(n.Schedule.Duration))
	n.heal(ctx)
	return alive
}

// heal undoes the fault even when ctx is already done: a run interrupted
// mid-fault still leaves a healed cluster and a closed fault window.
func (n *Nemesis) heal(ctx context.Context) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	name := n.Fault.Name()
	e := history.Event{Type: history.Info, Process: history.Nemesis, F: history.Stop, Fault: name}
	if err := n.Fault.Heal(hctx, n.Cluster); err != nil {
		slog.Error("nemesis could not heal", "fault", name, "err", err)
		e.Error = err.Error()
	}
	n.Recorder.Record(e)
	n.set("", 0)
}

func (n *Nemesis) set(state string, started int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.state = state
	n.count += started
}

func (n *Nemesis) jittered(d time.Duration) time.Duration {
	if n.Schedule.Jitter <= 0 {
		return d
	}
	f := 1 + n.Schedule.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// sleep waits for d; it returns false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func names(ms []*compose.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}
