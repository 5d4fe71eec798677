package nemesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/compose"
	"github.com/faultline/faultline/failpoint"
)

// Failpoint arms a gofail failpoint on one member for the window, so that
// the member crashes, stalls or fails at that point of its code rather
// than wherever a SIGKILL happens to land. What reaches the point is
// given a push (a compaction, a defragmentation, or the member cut off
// until the leader must send it a snapshot); a member that panicked is
// restarted on heal; what the window's effect says is whether, and when,
// the failpoint fired. It needs a failpoint build of the target
// (compose.FailpointBuild), whose members serve gofail's endpoint.
type Failpoint struct {
	// Point and Action are what to arm (failpoint=POINT:ACTION); both
	// empty for failpoint-random, which draws them from the catalog each
	// window.
	Point, Action string
	// Role is which member: any, leader or follower.
	Role string

	// Set by Start for the window.
	use      use
	term     string
	member   *compose.Member
	ep       failpoint.Endpoint
	armed    time.Time
	logMark  int // the length of the member's log when armed
	bg       background
	mu       sync.Mutex
	cut      snapshotCut
	exited   time.Duration // since armed; 0 while running
	pushed   string        // what the trigger did
	effects  map[string]string
	crashing []string
}

// Roles a failpoint may be aimed at.
const (
	roleAny      = "any"
	roleLeader   = "leader"
	roleFollower = "follower"
)

// Triggers: what makes the code around a failpoint run.
const (
	// traffic: the workload's writes reach it.
	traffic = ""
	// compaction: a compaction of the store's history, repeated until it
	// fires.
	compaction = "compact"
	// defragmentation of the member's backend, repeated until it fires.
	defragmentation = "defrag"
	// snapshot: the member is cut off from its peers until the leader has
	// moved on further than its log reaches back, then let back, so that
	// the leader sends it a snapshot.
	snapshot = "snapshot"
)

// use is how one failpoint is exercised: who to arm it on, what makes it
// fire, and the action failpoint-random gives it.
type use struct {
	point, action, role, trigger string
}

// catalog is the failpoints faultline knows how to reach, in etcd (the
// ones etcd's robustness tests use, with the same triggers) and kvnode
// (which names its points after etcd's that mean the same). A failpoint
// not listed may still be armed by name; it gets no trigger.
var catalog = []use{
	{"beforeCommit", "panic", roleAny, traffic},
	{"afterCommit", "panic", roleAny, traffic},
	{"raftBeforeSave", "panic", roleAny, traffic},
	{"raftAfterSave", "panic", roleAny, traffic},
	// v3.5 writes the log here instead when the same Ready commits
	// entries, as it does on a member alone.
	{"raftBeforeSaveWaitWalSync", "panic", roleAny, traffic},
	{"raftBeforeSave", "sleep(1s)", roleAny, traffic},
	{"raftAfterSave", "sleep(1s)", roleAny, traffic},
	{"commitBeforePreCommitHook", "panic", roleAny, traffic},
	{"commitAfterPreCommitHook", "panic", roleAny, traffic},
	{"beforeStartDBTxn", "panic", roleAny, traffic},
	{"afterStartDBTxn", "panic", roleAny, traffic},
	{"beforeWritebackBuf", "panic", roleAny, traffic},
	{"afterWritebackBuf", "panic", roleAny, traffic},
	{"beforeSendWatchResponse", "sleep(1s)", roleAny, traffic},
	{"raftBeforeLeaderSend", "panic", roleLeader, traffic},
	{"raftBeforeFollowerSend", "panic", roleFollower, traffic},
	{"defragBeforeCopy", "panic", roleAny, defragmentation},
	{"defragBeforeRename", "panic", roleAny, defragmentation},
	{"compactBeforeCommitScheduledCompact", "panic", roleAny, compaction},
	{"compactAfterCommitScheduledCompact", "panic", roleAny, compaction},
	{"compactBeforeSetFinishedCompact", "panic", roleAny, compaction},
	{"compactAfterSetFinishedCompact", "panic", roleAny, compaction},
	{"compactBeforeCommitBatch", "panic", roleAny, compaction},
	{"compactAfterCommitBatch", "panic", roleAny, compaction},
	{"compactBeforeApply", "panic", roleAny, compaction},
	{"compactAfterApply", "panic", roleAny, compaction},
	{"raftBeforeSaveSnap", "panic", roleFollower, snapshot},
	{"raftAfterSaveSnap", "panic", roleFollower, snapshot},
	{"raftBeforeApplySnap", "panic", roleFollower, snapshot},
	{"raftAfterApplySnap", "panic", roleFollower, snapshot},
	{"raftAfterWALRelease", "panic", roleFollower, snapshot},
	{"applyBeforeOpenSnapshot", "panic", roleFollower, snapshot},
	// kvnode rewrites its log after a snapshot of its own, which writes
	// bring about.
	{"raftBeforeWALRelease", "panic", roleAny, traffic},
	// Points that fail with the value given: armed by name only
	// (failpoint-random draws no error), they get their trigger here.
	{"defragOpenFileError", "error", roleAny, defragmentation},
	{"defragdbFail", "error", roleAny, defragmentation},
	{"snapDBDirSyncError", "error", roleFollower, snapshot},
}

// randomSnapshotLag bounds the lag failpoint-random will wait for: with
// the defaults (15,000 entries and more) a member cut off would seldom fall
// far enough behind within a window, and the window would be wasted.
const randomSnapshotLag = 2000

// ParseFailpoint reads failpoint=POINT:ACTION[@ROLE]'s setting. The
// actions are panic, sleep(DURATION), error (the point fails with an
// error: only points that take a string value), each optionally N* (fire
// only N times); ROLE is any (the default), leader or follower.
func ParseFailpoint(arg string) (*Failpoint, error) {
	spec, role, hasRole := strings.Cut(arg, "@")
	if !hasRole {
		role = roleAny
	}
	if !slices.Contains([]string{roleAny, roleLeader, roleFollower}, role) {
		return nil, fmt.Errorf("failpoint=%s: @%s: want @any, @leader or @follower", arg, role)
	}
	point, action, ok := strings.Cut(spec, ":")
	if !ok || !failpointName.MatchString(point) {
		return nil, fmt.Errorf("failpoint=%s: want failpoint=NAME:ACTION[@any|leader|follower], e.g. failpoint=raftBeforeSave:panic@leader (faultline failpoints lists the names)", arg)
	}
	if _, err := gofailTerm(action, point); err != nil {
		return nil, fmt.Errorf("failpoint=%s: %w", arg, err)
	}
	return &Failpoint{Point: point, Action: action, Role: role}, nil
}

var (
	failpointName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	actionRE      = regexp.MustCompile(`^(?:([1-9][0-9]*)\*)?(panic|error|sleep\(([^)]*)\))$`)
)

// gofailTerm is gofail's term for an action: sleep takes a Go duration
// quoted, error returns a string naming the point.
func gofailTerm(action, point string) (string, error) {
	m := actionRE.FindStringSubmatch(action)
	if m == nil {
		return "", fmt.Errorf("action %q: want panic, sleep(DURATION) or error, optionally N* (e.g. 2*panic, sleep(1s))", action)
	}
	count := ""
	if m[1] != "" {
		count = m[1] + "*"
	}
	switch {
	case m[2] == "panic":
		return count + "panic", nil
	case m[2] == "error":
		return count + `return("faultline: failpoint ` + point + `")`, nil
	}
	d, err := time.ParseDuration(m[3])
	if err != nil || d <= 0 || d > time.Minute {
		return "", fmt.Errorf("action %q: want a sleep of a duration up to 1m, e.g. sleep(500ms)", action)
	}
	return count + "sleep(" + strconv.Quote(d.String()) + ")", nil
}

// Name is failpoint=POINT:ACTION@ROLE, or failpoint-random.
func (f *Failpoint) Name() string {
	if f.Point == "" {
		return "failpoint-random"
	}
	return "failpoint=" + f.Point + ":" + f.Action + "@" + f.Role
}

// Mechanism is what was armed in the window: for failpoint-random, the
// draw.
func (f *Failpoint) Mechanism() string {
	if f.use.point == "" {
		return ""
	}
	s := "gofail " + f.use.point + "=" + f.term
	if f.use.trigger != traffic {
		s += ", " + f.use.trigger + " trigger"
	}
	return s
}

func (f *Failpoint) minMembers() int {
	if f.Role == roleFollower {
		return 2
	}
	return 1
}

// Effects says whether the failpoint fired, per member.
func (f *Failpoint) Effects() map[string]string { return f.effects }

// Crashes names the member a panic or an error is armed on.
func (f *Failpoint) Crashes() []string { return f.crashing }

func (f *Failpoint) Start(ctx context.Context, c Cluster, r *rand.Rand) ([]*compose.Member, error) {
	f.use, f.member, f.effects, f.crashing, f.pushed, f.exited = use{}, nil, nil, nil, "", 0
	listed, err := listFailpoints(ctx, c)
	if err != nil {
		return nil, err
	}
	u, err := f.choose(c, listed, r)
	if err != nil {
		return nil, err
	}
	m, err := aim(ctx, c, u.role, r)
	if err != nil {
		return nil, err
	}
	term, err := gofailTerm(u.action, u.point)
	if err != nil {
		return nil, err
	}
	f.use, f.term, f.member = u, term, m
	f.ep = failpoint.Endpoint{URL: m.FailpointURL}
	// A store may well exit on an error injected where it writes, as
	// etcd does on a failed fsync.
	if !strings.Contains(term, "sleep") {
		f.crashing = []string{m.Name}
	}
	// Panics of earlier windows are in the log already.
	if log, err := c.Log(ctx, m); err == nil {
		f.logMark = len(log)
	}
	if err := f.ep.Arm(ctx, u.point, term); err != nil {
		return nil, err
	}
	f.armed = time.Now()
	f.effects = map[string]string{m.Name: "armed " + u.point + "=" + term}
	f.bg.start(ctx, func(ctx context.Context) { f.trigger(ctx, c) })
	return []*compose.Member{m}, nil
}

// listFailpoints asks the members, in turn until one answers, which
// failpoints the build has.
func listFailpoints(ctx context.Context, c Cluster) (map[string]string, error) {
	err := errors.New("the cluster has no members")
	for _, m := range c.List() {
		if m.FailpointURL == "" {
			return nil, errors.New("the members are not a failpoint build: their failpoints cannot be reached")
		}
		var listed map[string]string
		if listed, err = (failpoint.Endpoint{URL: m.FailpointURL}).List(ctx); err == nil {
			return listed, nil
		}
	}
	return nil, fmt.Errorf("listing the failpoints: %w", err)
}

// choose is the failpoint to arm: the one named, or for failpoint-random
// one of the catalog's that this build has.
func (f *Failpoint) choose(c Cluster, listed map[string]string, r *rand.Rand) (use, error) {
	if f.Point != "" {
		if _, ok := listed[f.Point]; !ok {
			return use{}, fmt.Errorf("failpoint %s is not in this build (faultline failpoints lists what it has)", f.Point)
		}
		u := use{point: f.Point, action: f.Action, role: f.Role}
		if i := slices.IndexFunc(catalog, func(k use) bool { return k.point == f.Point }); i >= 0 {
			u.trigger = catalog[i].trigger
		}
		return u, nil
	}
	lag := c.SnapshotLag()
	var can []use
	for _, u := range catalog {
		if _, ok := listed[u.point]; !ok || u.action == "error" {
			continue
		}
		if u.trigger == snapshot && (lag == 0 || lag > randomSnapshotLag) {
			continue
		}
		if u.role == roleFollower && len(c.List()) < 2 {
			continue
		}
		can = append(can, u)
	}
	if len(can) == 0 {
		return use{}, errors.New("this build has none of the failpoints failpoint-random draws from")
	}
	return can[r.IntN(len(can))], nil
}

// aim picks the member a fault is aimed at: anyone, the leader, a random
// follower, or the member the role names.
func aim(ctx context.Context, c Cluster, role string, r *rand.Rand) (*compose.Member, error) {
	ms := c.List()
	switch role {
	case roleAny:
		return shuffled(r, ms)[0], nil
	case roleLeader, roleFollower:
	default:
		for _, m := range ms {
			if m.Name == role {
				return m, nil
			}
		}
		return nil, fmt.Errorf("%s: not a member; the cluster has %s", role, strings.Join(compose.Names(ms), ", "))
	}
	l, err := findLeader(ctx, c, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if role == roleLeader {
		return l, nil
	}
	rest := without(ms, l)
	if len(rest) == 0 {
		return nil, fmt.Errorf("no follower: %s is the only member", l.Name)
	}
	return shuffled(r, rest)[0], nil
}

// trigger runs until the window ends: it pushes the code path towards the
// point and notes when the member exits (a panic).
func (f *Failpoint) trigger(ctx context.Context, c Cluster) {
	push := func() {}
	switch f.use.trigger {
	case compaction:
		push = func() { f.say(compactNow(ctx, c)) }
	case defragmentation:
		push = func() { f.say(defragment(ctx, c, f.member)) }
	case snapshot:
		f.cut.run(ctx, c, f.member, f.say)
	}
	next := time.Now()
	for {
		running, _, err := c.State(ctx, f.member)
		if err == nil && !running {
			f.mu.Lock()
			f.exited = time.Since(f.armed)
			f.mu.Unlock()
			return
		}
		if time.Now().After(next) {
			push()
			next = time.Now().Add(3 * time.Second)
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return
		}
	}
}

func (f *Failpoint) say(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushed = what
}

// compactNow compacts the store's whole history up to now.
func compactNow(ctx context.Context, c Cluster) string {
	cli, err := c.Client()
	if err != nil {
		return err.Error()
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := cli.Get(ctx, "faultline-nemesis-compact")
	if err != nil {
		return "could not read the revision to compact at: " + err.Error()
	}
	if _, err := cli.Compact(ctx, res.Header.Revision, clientv3.WithCompactPhysical()); err != nil && !strings.Contains(err.Error(), "compacted") {
		// A member that panicked mid-compaction answers with a closed
		// connection: the push worked.
		return fmt.Sprintf("compacting at revision %d: %v", res.Header.Revision, err)
	}
	return fmt.Sprintf("compacted at revision %d", res.Header.Revision)
}

// defragment defragments m's backend.
func defragment(ctx context.Context, c Cluster, m *compose.Member) string {
	cli, err := c.Client(m)
	if err != nil {
		return err.Error()
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cli.Defragment(ctx, m.ClientURL); err != nil {
		return "defragmenting: " + err.Error()
	}
	return "defragmented"
}

// Heal ends the trigger, lets a cut-off member back, reads whether the
// failpoint fired and disarms it, and restarts the member if it exited.
func (f *Failpoint) Heal(ctx context.Context, c Cluster) error {
	if f.member == nil {
		return nil
	}
	f.bg.stop()
	errs := []error{f.cut.Heal(ctx, c)}
	u, m := f.use, f.member
	f.mu.Lock()
	exited, pushed := f.exited, f.pushed
	f.mu.Unlock()
	if exited == 0 {
		if running, _, err := c.State(ctx, m); err == nil && !running {
			exited = time.Since(f.armed)
		}
	}
	var said string
	if exited > 0 {
		said = fmt.Sprintf("%s=%s fired: %s exited %.1fs after it was armed; restarted on heal", u.point, f.term, m.Name, exited.Seconds())
		if !f.panicLogged(ctx, c) {
			said = fmt.Sprintf("%s=%s: %s exited %.1fs after it was armed, but its log does not show the failpoint's panic; restarted on heal", u.point, f.term, m.Name, exited.Seconds())
		}
		errs = append(errs, c.Start(ctx, m))
	} else {
		n, err := f.ep.Count(ctx, u.point)
		switch {
		case err != nil:
			said = fmt.Sprintf("%s=%s: whether it fired is not known (%v)", u.point, f.term, err)
		case n == 0:
			said = fmt.Sprintf("%s=%s never fired in %.1fs", u.point, f.term, time.Since(f.armed).Seconds())
		default:
			said = fmt.Sprintf("%s=%s fired %d times in %.1fs", u.point, f.term, n, time.Since(f.armed).Seconds())
		}
		errs = append(errs, f.ep.Disarm(ctx, u.point))
	}
	if pushed != "" {
		said += " (" + u.trigger + " trigger: " + pushed + ")"
	}
	f.effects = map[string]string{m.Name: said}
	f.member = nil
	return errors.Join(errs...)
}

// panicLogged says whether the member's log shows gofail's panic at the
// point, "failpoint panic: …", since it was armed: an
// exit for another reason is not the failpoint firing.
func (f *Failpoint) panicLogged(ctx context.Context, c Cluster) bool {
	log, err := c.Log(ctx, f.member)
	if err != nil {
		return false
	}
	// gofail prints the term's value when it has one ("failpoint
	// panic: {}" for a bare panic), the point's name otherwise.
	i := bytes.LastIndex(log, []byte("failpoint panic: "))
	return i >= f.logMark
}

// Failpoints says whether any of fs arms failpoints, so needs a failpoint
// build of the target.
func Failpoints(fs []Fault) bool {
	return anyPart(fs, func(*Failpoint) bool { return true })
}

// CheckFailpoints says whether the failpoints fs name are among points
// (what the build declares), and that error is asked only of points that
// take a string.
func CheckFailpoints(fs []Fault, points []failpoint.Point, build string) error {
	types := map[string]string{}
	for _, p := range points {
		types[p.Name] = p.Type
	}
	var errs []error
	for _, f := range fs {
		for _, p := range parts(f) {
			fp, ok := p.(*Failpoint)
			if !ok || fp.Point == "" {
				continue
			}
			typ, ok := types[fp.Point]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%s: %s declares no failpoint %s (faultline failpoints lists what it has)", fp.Name(), build, fp.Point))
			case strings.HasSuffix(fp.Action, "error") && typ != "string":
				errs = append(errs, fmt.Errorf("%s: %s takes no value (%s), so it cannot fail with an error: use panic or sleep", fp.Name(), fp.Point, typ))
			}
		}
	}
	return errors.Join(errs...)
}
