// Package nemesis injects faults into a running cluster on a schedule and
// records when each one started, was healed, and when the cluster had
// recovered from it.
//
// Its events in the history (process "nemesis", fault = the fault's name):
//
//	start    the fault is in place; nodes are the members it hit
//	stop     the fault is healed (error set if the heal failed)
//	recover  the cluster answers again after the heal: one leader, every
//	         member answering (error set if not by the end of the quiet
//	         window); its time minus the stop's is the time to recover.
//	         Fault "final" is the final phase after the time limit, which
//	         also waits for every member to reach the same applied index.
//	skip     a fault could not start (error says why); no window
//
// history.Faults pairs them into windows with their time to recover.
package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/history"
)

// Cluster is what faults act on; *compose.Cluster is one.
type Cluster interface {
	List() []*compose.Member
	Leader(ctx context.Context) (*compose.Member, error)
	Status(ctx context.Context, m *compose.Member) (compose.Status, error)
	Kill(ctx context.Context, m *compose.Member) error
	Start(ctx context.Context, m *compose.Member) error
	Pause(ctx context.Context, m *compose.Member) error
	Unpause(ctx context.Context, m *compose.Member) error
	State(ctx context.Context, m *compose.Member) (running, paused bool, err error)
	// Links is the network between the members, for network faults.
	Links() compose.Links
	// Wipe removes a member's container and data; Rejoin starts it again,
	// empty, joining the running cluster.
	Wipe(ctx context.Context, m *compose.Member) error
	Rejoin(ctx context.Context, m *compose.Member, initial string) error
	// Client is an etcd client of the given members (all when none), for
	// admin faults.
	Client(ms ...*compose.Member) (*clientv3.Client, error)
	// Disks are the members' disks, for disk faults; a cluster started
	// without the filesystem layer has none.
	Disks() (compose.Disks, error)
	// SnapshotLag is how far a member must fall behind the leader to be
	// sent a snapshot (0: not known).
	SnapshotLag() uint64
	// Log is what a member's server has printed so far.
	Log(ctx context.Context, m *compose.Member) ([]byte, error)
}

// Fault is one kind of failure. Start injects it and says which members it
// hit, making its random choices (which member, how to split) with r; Heal
// undoes it, also after a Start that failed half way.
type Fault interface {
	Name() string
	Start(ctx context.Context, c Cluster, r *rand.Rand) ([]*compose.Member, error)
	Heal(ctx context.Context, c Cluster) error
}

// mechanism is a fault that can be made more than one way and says which
// way it was, for the history.
type mechanism interface {
	Mechanism() string
}

// effecter is a fault that says per member what it did (what a power loss
// dropped, which file it damaged), after Start and again after Heal.
type effecter interface {
	Effects() map[string]string
}

// crasher is a fault that may crash members on purpose, so that the
// crashes their logs show are expected (history.Event.Crash).
type crasher interface {
	Crashes() []string
}

// damager is a fault that damages members' files on purpose, so that their
// complaints about damaged data are expected (history.Event.Damaged).
type damager interface {
	Damages() []string
}

// sizer is a fault that needs a minimum cluster size.
type sizer interface {
	minMembers() int
}

// Recover is the F of the event recorded when the cluster has recovered
// from a fault (or, with Error set, when it had not by the end of the quiet
// window). Its time minus the stop event's is the time to recover.
const Recover = history.Recover

// Skip is the F of the event recorded when a fault could not start (no
// leader to find, a store without the API the fault needs); Error says
// why. The window passes without a fault.
const Skip = "skip"

// Final is the Fault name of the final phase's events.
const Final = history.Final

// kind is one fault --nemesis accepts, with what it does; make is nil for
// one that needs a setting (name=SETTING).
type kind struct {
	name, doc string
	make      func() Fault
}

var faults = []kind{
	{"kill-random", "SIGKILL one random member, restart it on heal", func() Fault { return kill(pickRandom) }},
	{"kill-leader", "SIGKILL the leader, restart it on heal", func() Fault { return kill(pickLeader) }},
	{"kill-minority", "SIGKILL a random minority", func() Fault { return kill(pickMinority) }},
	{"kill-majority", "SIGKILL a random majority (the cluster stops serving)", func() Fault { return kill(pickMajority) }},
	{"kill-all", "SIGKILL every member, restart them all on heal", func() Fault { return kill(pickAll) }},
	{"pause-random", "freeze one random member (docker pause), thaw it on heal", func() Fault { return pause(pickRandom) }},
	{"pause-leader", "freeze the leader", func() Fault { return pause(pickLeader) }},
	{"pause-minority", "freeze a random minority", func() Fault { return pause(pickMinority) }},
	{"partition-leader", "cut the leader off from the other members (clients still reach it)", func() Fault { return &Partition{kind: partLeader} }},
	{"partition-random", "cut one random member off from the others", func() Fault { return &Partition{kind: partRandom} }},
	{"partition-halves", "split the members into a random minority and majority", func() Fault { return &Partition{kind: partHalves} }},
	{"partition-majorities-ring", "every member sees a different majority (needs 4+ members)", func() Fault { return &Partition{kind: partRing} }},
	{"partition-bridge", "two halves that only one member joins", func() Fault { return &Partition{kind: partBridge} }},
	{"partition-member", "partition-member=NAME cuts member NAME (n1 to n9) off from the others; =leader the leader, =follower a random member that does not lead", nil},
	{"compact", "compact the history at a recent revision (keeps the last 100), under load", func() Fault { return &Compact{Keep: 100} }},
	{"defrag", "defragment every member's backend, one after another", func() Fault { return &Defrag{} }},
	{"member-replace", "remove a random member (Cluster API), destroy its data, add it back empty on heal", func() Fault { return &MemberReplace{} }},
	{"peer-latency", "hold peer traffic 100ms±50ms, or peer-latency=DELAY:JITTER (the agent's userspace peer proxy; no netem here)", func() Fault { return &PeerLatency{} }},
	{"peer-loss", "every member drops 20% (or peer-loss=PCT) of its peers' packets at random (netfilter; no netem here)", func() Fault { return &PeerLoss{} }},
	{"power-loss-random", "cut one random member's power: SIGKILL, then forget every write it had not fsynced; restart on heal", func() Fault { return powerLoss(pickRandom) }},
	{"power-loss-leader", "cut the leader's power", func() Fault { return powerLoss(pickLeader) }},
	{"power-loss-followers", "cut every follower's power and keep the leader down (SIGKILL) until they have restarted", func() Fault { return &FollowersLoss{} }},
	{"power-loss-minority", "cut a random minority's power", func() Fault { return powerLoss(pickMinority) }},
	{"power-loss-majority", "cut a random majority's power", func() Fault { return powerLoss(pickMajority) }},
	{"power-loss-all", "cut every member's power at once", func() Fault { return powerLoss(pickAll) }},
	{"disk-corrupt", "stop a minority, flip a bit in each one's log or a snapshot; on heal restart it (replaced if it refuses)", func() Fault { return &Damage{how: compose.Flip} }},
	{"disk-truncate", "stop a minority, cut the tail of each one's log; on heal restart it (replaced if it refuses)", func() Fault { return &Damage{how: compose.Cut} }},
	{"disk-slow", "one random member's disk waits 100ms (or disk-slow=DELAY) before every write and sync; disk-slow=DELAY@PICK picks the members (random, leader, minority, majority, all)", func() Fault { return &SlowDisk{} }},
	{"disk-error", "one random member's fsyncs fail with EIO (disk-error=eio), or its writes with ENOSPC (disk-error=enospc); its power is cut before the heal; disk-error=eio@majority picks the members as disk-slow does", func() Fault { return &FailDisk{} }},
	{"blackhole-until-snapshot", "cut one random follower off from its peers until the leader has moved on past what its log keeps (--snapshot-count plus --snapshot-catchup-entries), then let it back to restore the snapshot the leader sends", func() Fault { return &SnapshotCatchUp{} }},
	{"failpoint-random", "arm one failpoint per window, drawn from those faultline knows how to reach in this build, with its trigger (a failpoint build of the target); failpoint=NAME:ACTION[@any|leader|follower] arms one by name, ACTION panic, sleep(DURATION) or error, optionally N*", func() Fault { return &Failpoint{Role: roleAny} }},
}

// Names lists the faults --nemesis accepts.
func Names() []string {
	var out []string
	for _, f := range faults {
		out = append(out, f.name)
	}
	return out
}

// Help describes every fault, one per line, for the command line's usage.
func Help() string {
	var b strings.Builder
	for _, f := range faults {
		fmt.Fprintf(&b, "  %-26s %s\n", f.name, f.doc)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// ErrClock explains why there is no clock fault.
var ErrClock = errors.New("clock faults are not possible here: every member container shares the host's kernel, " +
	"and a kernel has one wall clock, so skewing one member's clock would skew the host's and every other member's " +
	"(real clock faults need one VM per member)")

// UnknownError is a fault name Parse does not know.
type UnknownError struct{ Name string }

func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown nemesis %q: want none, or one or more of %s (comma-separated: they take turns; joined by +: at once)",
		e.Name, strings.Join(Names(), ", "))
}

// Parse returns the faults a --nemesis value asks for: one name, or several
// separated by commas, taken in turn, one per fault window. Names joined
// by "+" (partition-leader+pause-random) are one fault window with all of
// them at once. "none" (alone) means no faults.
func Parse(spec string) ([]Fault, error) {
	if strings.TrimSpace(spec) == "none" {
		return nil, nil
	}
	var out []Fault
	seen := map[string]bool{}
	for item := range strings.SplitSeq(spec, ",") {
		var parts []Fault
		for name := range strings.SplitSeq(item, "+") {
			f, err := parseOne(strings.TrimSpace(name))
			if err != nil {
				return nil, err
			}
			if slices.ContainsFunc(parts, func(p Fault) bool { return p.Name() == f.Name() }) {
				return nil, fmt.Errorf("%q names %s twice", item, f.Name())
			}
			parts = append(parts, f)
		}
		f := parts[0]
		if len(parts) > 1 {
			// Network faults go in first and come out last: the agent
			// cannot exec in a paused or killed member.
			slices.SortStableFunc(parts, func(a, b Fault) int { return rank(a) - rank(b) })
			f = &Together{Faults: parts}
		}
		if seen[f.Name()] {
			return nil, fmt.Errorf("%q is named twice", f.Name())
		}
		seen[f.Name()] = true
		out = append(out, f)
	}
	return out, nil
}

// rank orders faults within a window: those that stop members (kills,
// pauses, power losses, damage) go in after the ones that need the member
// running to be made (network and disk settings go through its agent).
func rank(f Fault) int {
	switch f.(type) {
	case *memberFault, *FollowersLoss, *Damage:
		return 1
	}
	return 0
}

func parseOne(name string) (Fault, error) {
	if name == "clock" || strings.HasPrefix(name, "clock-") {
		return nil, fmt.Errorf("%q: %w", name, ErrClock)
	}
	if name == "none" {
		return nil, errors.New(`"none" cannot be combined with faults`)
	}
	name, arg, hasArg := strings.Cut(name, "=")
	if hasArg {
		return parseWithArg(name, arg)
	}
	i := slices.IndexFunc(faults, func(k kind) bool { return k.name == name })
	if i < 0 {
		return nil, &UnknownError{Name: name}
	}
	if faults[i].make == nil {
		return parseWithArg(name, "")
	}
	return faults[i].make(), nil
}

// parseWithArg reads the faults that take a setting: peer-loss=PCT,
// peer-latency=DELAY or DELAY:JITTER, disk-slow=DELAY[@PICK] and
// disk-error=eio|enospc[@PICK].
func parseWithArg(name, arg string) (Fault, error) {
	switch name {
	case "peer-loss":
		n, err := strconv.Atoi(strings.TrimSuffix(arg, "%"))
		if err != nil || n < 1 || n > 100 {
			return nil, fmt.Errorf("peer-loss=%s: want a percentage from 1 to 100, e.g. peer-loss=30", arg)
		}
		return &PeerLoss{Loss: n}, nil
	case "peer-latency":
		ds, js, _ := strings.Cut(arg, ":")
		d, err := time.ParseDuration(ds)
		j := time.Duration(0)
		if err == nil && js != "" {
			j, err = time.ParseDuration(js)
		}
		if err != nil || d <= 0 || j < 0 || j > d {
			return nil, fmt.Errorf("peer-latency=%s: want a delay and optionally a jitter no larger, e.g. peer-latency=200ms:50ms", arg)
		}
		return &PeerLatency{Delay: d, Jitter: j}, nil
	case "disk-slow":
		ds, p, err := cutPick(name, arg)
		if err != nil {
			return nil, err
		}
		d := DefaultDiskDelay
		if ds != "" {
			d, err = time.ParseDuration(ds)
		}
		if err != nil || d <= 0 || d > time.Minute {
			return nil, fmt.Errorf("disk-slow=%s: want a delay up to 1m, e.g. disk-slow=200ms", arg)
		}
		return &SlowDisk{Delay: d, Pick: p}, nil
	case "partition-member":
		return parseMemberAim(arg)
	case "disk-error":
		how, p, err := cutPick(name, arg)
		if err != nil {
			return nil, err
		}
		if how != compose.DiskEIO && how != compose.DiskENOSPC {
			return nil, fmt.Errorf("disk-error=%s: want disk-error=%s (fsyncs fail) or disk-error=%s (writes fail)", arg, compose.DiskEIO, compose.DiskENOSPC)
		}
		return &FailDisk{How: how, Pick: p}, nil
	case "failpoint":
		return ParseFailpoint(arg)
	}
	return nil, fmt.Errorf("%s=%s: only peer-loss=PCT, peer-latency=DELAY[:JITTER], disk-slow=DELAY[@PICK], disk-error=eio|enospc[@PICK], partition-member=NAME|leader|follower and failpoint=NAME:ACTION[@ROLE] take a setting", name, arg)
}

// cutPick splits the @PICK off a disk fault's setting: which members it
// hits, one random member when none is given.
func cutPick(name, arg string) (string, pick, error) {
	rest, which, found := strings.Cut(arg, "@")
	if !found {
		return rest, pickRandom, nil
	}
	for p := pickRandom; p <= pickAll; p++ {
		if which == p.String() {
			return rest, p, nil
		}
	}
	return "", 0, fmt.Errorf("%s=%s: @%s: want @random, @leader, @minority, @majority or @all", name, arg, which)
}

// Fits says whether every fault can run against a cluster of n members.
func Fits(fs []Fault, n int) error {
	var errs []error
	for _, f := range fs {
		if s, ok := f.(sizer); ok && n < s.minMembers() {
			errs = append(errs, fmt.Errorf("%s needs at least %d members, the cluster has %d", f.Name(), s.minMembers(), n))
		}
	}
	return errors.Join(errs...)
}

// Supported says whether every fault can be made on members of the given
// runtime (compose.Docker or compose.Local).
func Supported(fs []Fault, runtime string) error {
	var errs []error
	if needsDisk(fs) {
		errs = append(errs, compose.DiskNeeds(runtime))
	}
	if runtime != compose.Local {
		return errors.Join(errs...)
	}
	for _, f := range fs {
		for _, p := range parts(f) {
			if _, ok := p.(*PeerLoss); ok {
				errs = append(errs, fmt.Errorf("%s: %w", p.Name(), compose.ErrLocalLoss))
			}
		}
	}
	return errors.Join(errs...)
}

// DefaultJitter is the Schedule.Jitter of --nemesis runs and of schedule
// files that set none: each window is up to 20% shorter or longer than
// asked.
const DefaultJitter = 0.2

// Step is one fault window of a schedule: Quiet of quiet, then Fault for
// For, then heal.
type Step struct {
	Fault Fault
	Quiet time.Duration
	For   time.Duration
}

// Schedule is the steps a Nemesis takes, in order; with Repeat it starts
// over after the last one until the run ends, without it the nemesis stays
// quiet after the last. Jitter spreads each window by up to that fraction
// either way, so faults do not fall in lockstep with anything periodic in
// the store.
type Schedule struct {
	Steps  []Step
	Repeat bool
	Jitter float64
}

// Faults are the faults of the schedule's steps.
func (s Schedule) Faults() []Fault {
	var out []Fault
	for _, st := range s.Steps {
		out = append(out, st.Fault)
	}
	return out
}

// Turns is the schedule of --nemesis a,b: the faults take turns, each
// after interval of quiet and lasting duration, over and over.
func Turns(faults []Fault, interval, duration time.Duration) Schedule {
	s := Schedule{Repeat: true, Jitter: DefaultJitter}
	for _, f := range faults {
		s.Steps = append(s.Steps, Step{Fault: f, Quiet: interval, For: duration})
	}
	return s
}

// Nemesis runs faults on a schedule, one window at a time.
type Nemesis struct {
	Schedule Schedule
	Cluster  Cluster
	Recorder *history.Recorder
	// Rand makes every random choice of the schedule: each window's
	// jitter and the faults' picks. One seeded the same way repeats them;
	// nil is a fresh random source.
	Rand *rand.Rand

	mu       sync.Mutex
	state    string
	count    int
	recovery time.Duration
}

// State is a short description for the status line.
func (n *Nemesis) State() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.state
	if s == "" {
		s = "quiet"
	}
	if n.recovery > 0 {
		s += fmt.Sprintf(", last recovery %.1fs", n.recovery.Seconds())
	}
	return s
}

// Count is how many faults have been started.
func (n *Nemesis) Count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.count
}

// Run takes the schedule's steps until ctx is done (or, without Repeat,
// until the last step is over), and heals the current fault before
// returning even then, so that the cluster is whole again for the final
// reads. After each heal it measures how long the cluster takes to recover
// within the quiet that follows (after the last step of a schedule that
// does not repeat: within that step's own quiet length) and records it.
func (n *Nemesis) Run(ctx context.Context) {
	if n.Rand == nil {
		n.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	steps := n.Schedule.Steps
	var last Fault // healed in the step before; the quiet now starting times its recovery
	for i := 0; len(steps) > 0 && (n.Schedule.Repeat || i < len(steps)); i++ {
		step := steps[i%len(steps)]
		quiet := n.jittered(step.Quiet)
		end := time.Now().Add(quiet)
		if last != nil {
			n.awaitRecovery(ctx, last.Name(), quiet)
		}
		if !sleep(ctx, time.Until(end)) {
			return
		}
		healed, alive := n.once(ctx, step.Fault, n.jittered(step.For))
		if !alive {
			return
		}
		last = nil
		if healed {
			last = step.Fault
		}
	}
	if last != nil {
		n.awaitRecovery(ctx, last.Name(), n.jittered(steps[len(steps)-1].Quiet))
	}
}

// once runs one fault window of the given length. healed says whether a
// fault was started and healed; alive is false when ctx ended the window.
func (n *Nemesis) once(ctx context.Context, f Fault, length time.Duration) (healed, alive bool) {
	name := f.Name()
	// A fault under way when the time limit comes is let finish, then
	// healed: cancelling it half way would leave, say, a kill the engine
	// carries out after its caller gave up, unrecorded and never undone.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	hit, err := f.Start(sctx, n.Cluster, n.Rand)
	cancel()
	if err != nil {
		// A fault that could not start (no leader just now, say) is logged,
		// whatever it did half way is undone, and the next window tries
		// again.
		slog.Warn("nemesis could not start", "fault", name, "err", err)
		n.Recorder.Record(history.Event{Type: history.Info, Process: history.Nemesis, F: Skip, FaultInfo: &history.FaultInfo{Fault: name}, Error: err.Error()})
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := f.Heal(hctx, n.Cluster); err != nil {
			slog.Error("nemesis could not undo a fault that failed to start", "fault", name, "err", err)
		}
		cancel()
		return false, ctx.Err() == nil
	}
	nodes := compose.Names(hit)
	e := history.Event{Type: history.Info, Process: history.Nemesis, F: history.Start, FaultInfo: &history.FaultInfo{Fault: name, Nodes: nodes, Effects: effects(f), Crash: gather(f, crasher.Crashes), Damaged: gather(f, damager.Damages)}}
	if m, ok := f.(mechanism); ok {
		e.Mechanism = m.Mechanism()
	}
	n.Recorder.Record(e)
	n.set(name+" "+strings.Join(nodes, ","), 1)
	alive = sleep(ctx, length)
	n.heal(ctx, f, nodes)
	return true, alive
}

// healLimit bounds a heal: a damaged member's restart, watched until it
// catches up or exits, and its replacement, for each of a minority, fit.
const healLimit = time.Minute

// heal undoes the fault even when ctx is already done: a run interrupted
// mid-fault still leaves a healed cluster and a closed fault window.
func (n *Nemesis) heal(ctx context.Context, f Fault, nodes []string) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healLimit)
	defer cancel()
	name := f.Name()
	e := history.Event{Type: history.Info, Process: history.Nemesis, F: history.Stop, FaultInfo: &history.FaultInfo{Fault: name, Nodes: nodes}}
	if err := f.Heal(hctx, n.Cluster); err != nil {
		slog.Error("nemesis could not heal", "fault", name, "err", err)
		e.Error = err.Error()
	}
	e.Effects = effects(f)
	n.Recorder.Record(e)
	n.set("", 0)
}

// awaitRecovery waits, at most limit, until the cluster is healthy again
// and records when it was (or that it was not).
func (n *Nemesis) awaitRecovery(ctx context.Context, name string, limit time.Duration) {
	start := time.Now()
	n.set("recovering from "+name, 0)
	defer n.set("", 0)
	err := waitHealthy(ctx, n.Cluster, limit)
	if ctx.Err() != nil {
		return
	}
	e := history.Event{Type: history.Info, Process: history.Nemesis, F: Recover, FaultInfo: &history.FaultInfo{Fault: name}}
	if err != nil {
		e.Error = fmt.Sprintf("not recovered %.1fs after the heal: %v", time.Since(start).Seconds(), err)
	} else {
		n.mu.Lock()
		n.recovery = time.Since(start)
		n.mu.Unlock()
	}
	n.Recorder.Record(e)
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
	f := 1 + n.Schedule.Jitter*(2*n.Rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// sleep waits for d; it returns false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// effects gathers what f's parts say they did, per member.
func effects(f Fault) map[string]string {
	var out map[string]string
	for _, p := range parts(f) {
		if ef, ok := p.(effecter); ok {
			for m, said := range ef.Effects() {
				if out == nil {
					out = map[string]string{}
				}
				if out[m] != "" {
					said = out[m] + "; " + said
				}
				out[m] = said
			}
		}
	}
	return out
}

// gather collects the members that those of f's parts that are Ts name.
func gather[T any](f Fault, named func(T) []string) []string {
	var out []string
	for _, p := range parts(f) {
		if t, ok := p.(T); ok {
			for _, m := range named(t) {
				if !slices.Contains(out, m) {
					out = append(out, m)
				}
			}
		}
	}
	return out
}
