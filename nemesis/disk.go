package nemesis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/faultline/faultline/compose"
)

// Disk faults act on the members' disks through faultline's filesystem
// layer (compose.Disks), which the runner mounts when a run asks for one
// of them (NeedsDisk).

// diskFault is a fault that may need the filesystem layer: a member fault
// does when it acts on the disk (power-loss-*), the others always.
type diskFault interface {
	usesDisk() bool
}

// NeedsDisk says whether a --nemesis spec asks for a fault that needs the
// members' data served through the filesystem layer.
func NeedsDisk(spec string) bool {
	fs, err := Parse(spec)
	return err == nil && needsDisk(fs)
}

func needsDisk(fs []Fault) bool {
	return anyPart(fs, diskFault.usesDisk)
}

// powerLoss cuts the power of the members: SIGKILL, then every write not
// yet fsynced is forgotten; on heal they restart with what was durable.
func powerLoss(p pick) Fault {
	return &memberFault{verb: "power-loss", pick: p, disk: true, do: cutPower, undo: Cluster.Start}
}

func cutPower(c Cluster, ctx context.Context, m *compose.Member) (string, error) {
	d, err := c.Disks()
	if err != nil {
		return "", err
	}
	return d.PowerLoss(ctx, m)
}

// FollowersLoss cuts the power of every member but the leader, and keeps
// the leader down (a plain SIGKILL: it loses nothing) until they have
// restarted and elected one of themselves: a new leader must then come
// from members that forgot what they had not fsynced, so a store that
// acknowledged on their unsynced word loses the write.
type FollowersLoss struct {
	leader    *compose.Member
	followers []*compose.Member
	effects   map[string]string
}

func (*FollowersLoss) Name() string    { return "power-loss-followers" }
func (*FollowersLoss) minMembers() int { return 3 }
func (*FollowersLoss) usesDisk() bool  { return true }

func (f *FollowersLoss) Effects() map[string]string { return f.effects }

func (f *FollowersLoss) Start(ctx context.Context, c Cluster, _ *rand.Rand) ([]*compose.Member, error) {
	l, err := findLeader(ctx, c, 5*time.Second)
	if err != nil {
		return nil, err
	}
	f.effects = map[string]string{}
	for _, m := range without(c.List(), l) {
		f.followers = append(f.followers, m)
		said, err := cutPower(c, ctx, m)
		if err != nil {
			return nil, err
		}
		f.effects[m.Name] = said
	}
	if err := c.Kill(ctx, l); err != nil {
		return nil, err
	}
	f.leader = l // only now: heal must not start a leader that still runs
	f.effects[l.Name] = "the leader: killed (SIGKILL, nothing lost), restarted after the others"
	return append(append([]*compose.Member(nil), f.followers...), l), nil
}

// Heal restarts the followers, waits until they have a leader (bounded:
// a store that cannot elect one is the checkers' to judge), then the old
// leader.
func (f *FollowersLoss) Heal(ctx context.Context, c Cluster) error {
	var errs []error
	for _, m := range f.followers {
		errs = append(errs, c.Start(ctx, m))
	}
	if f.leader != nil {
		if _, err := findLeader(ctx, c, 20*time.Second); err != nil {
			// Not a failed heal: whether the store recovers is the
			// checkers' to judge, once every member runs again.
			slog.Warn("the followers restarted after a power loss elected no leader; restarting the old leader too", "err", err)
		}
		errs = append(errs, c.Start(ctx, f.leader))
	}
	f.leader, f.followers = nil, nil
	return errors.Join(errs...)
}

// Damage stops a random minority of the members, damages one file of each
// while it is down (a bit flipped in its log or a snapshot, or its log's
// tail cut), and restarts them on heal. A store must then refuse to run
// the damaged member — heal replaces it, as an operator would: removed
// from the cluster, wiped, added back empty — or repair it from its peers;
// it must never serve wrong data.
type Damage struct {
	how     compose.Damage
	hit     []*compose.Member
	effects map[string]string
}

func (d *Damage) Name() string {
	if d.how == compose.Cut {
		return "disk-truncate"
	}
	return "disk-corrupt"
}
func (*Damage) minMembers() int { return pickMinority.minMembers() }
func (*Damage) usesDisk() bool  { return true }

func (d *Damage) Effects() map[string]string { return d.effects }

// Crashes and Damages name the damaged members: refusing to start may be
// a fatal error in their logs, or a complaint about the damaged file.
func (d *Damage) Crashes() []string { return compose.Names(d.hit) }
func (d *Damage) Damages() []string { return compose.Names(d.hit) }

// classes are the kinds of file damaged, in the order tried: a corrupted
// member gets a bit flipped in its log or in a snapshot at random (in its
// log when it has no snapshot yet), a truncated one loses its log's tail.
func (d *Damage) classes(r *rand.Rand) []string {
	if d.how == compose.Cut {
		return []string{compose.FileWAL}
	}
	return shuffled(r, []string{compose.FileWAL, compose.FileSnap})
}

func (d *Damage) Start(ctx context.Context, c Cluster, r *rand.Rand) ([]*compose.Member, error) {
	dk, ms, err := pickDisks(ctx, c, pickMinority, r)
	if err != nil {
		return nil, err
	}
	d.hit, d.effects = nil, map[string]string{}
	for _, m := range ms {
		// Hit before it is damaged: the damage crashes it first, and heal
		// must start it again whatever happened next.
		d.hit = append(d.hit, m)
		var errs []error
		for _, class := range d.classes(r) {
			said, err := dk.Damage(ctx, m, d.how, class, r.Uint64())
			if err == nil {
				d.effects[m.Name] = said
				errs = nil
				break
			}
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

// pickDisks returns the members' disks and the members p chooses.
func pickDisks(ctx context.Context, c Cluster, p pick, r *rand.Rand) (compose.Disks, []*compose.Member, error) {
	dk, err := c.Disks()
	if err != nil {
		return nil, nil, err
	}
	ms, err := p.choose(ctx, c, r)
	return dk, ms, err
}

// refusalWait bounds how long a restarted member may take to either catch
// up or exit.
const refusalWait = 12 * time.Second

// Heal starts each damaged member and watches it: one that exits instead
// of catching up with the others would not run on its damaged data (it
// refused it, or crashed on it), and is replaced.
func (d *Damage) Heal(ctx context.Context, c Cluster) error {
	var errs []error
	for _, m := range d.hit {
		errs = append(errs, d.restart(ctx, c, m))
	}
	d.hit = nil
	return errors.Join(errs...)
}

func (d *Damage) restart(ctx context.Context, c Cluster, m *compose.Member) error {
	// A damage that failed half way may have left the member's container
	// up with its server dead.
	if running, _, err := c.State(ctx, m); err != nil {
		return err
	} else if running {
		if err := c.Kill(ctx, m); err != nil {
			return err
		}
	}
	// Answering is not enough: a store that takes a cut log for a whole
	// one answers, then crashes on the leader's first word about entries
	// it lost. Running again means having applied what the others had.
	mark := appliedElsewhere(ctx, c, m)
	if err := c.Start(ctx, m); err != nil {
		return err
	}
	var exited bool
	_, err := waitFor(ctx, refusalWait, func() (bool, error) {
		running, _, err := c.State(ctx, m)
		if err != nil || !running {
			exited = err == nil
			return err == nil, err
		}
		return caughtUp(ctx, c, m, mark)
	})
	if err != nil {
		return fmt.Errorf("%s neither caught up nor exited after the damage: %w", m.Name, err)
	}
	if !exited {
		d.note(m, "ran again and caught up")
		return nil
	}
	d.note(m, "exited on its damaged data; replaced (removed, wiped, added back empty)")
	rep := &MemberReplace{}
	if err := rep.remove(ctx, c, m); err != nil {
		return err
	}
	err = rep.Heal(ctx, c)
	if said := rep.Effects()[m.Name]; said != "" {
		d.note(m, said)
	}
	return err
}

// caughtUp says whether m has applied mark, the others' applied index.
func caughtUp(ctx context.Context, c Cluster, m *compose.Member, mark uint64) (bool, error) {
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := c.Status(sctx, m)
	if err != nil {
		return false, err
	}
	if st.AppliedIndex < mark {
		return false, fmt.Errorf("applied index %d, the others had %d", st.AppliedIndex, mark)
	}
	return true, nil
}

// appliedElsewhere is the highest index the members other than m say they
// applied (0 if none answers).
func appliedElsewhere(ctx context.Context, c Cluster, m *compose.Member) uint64 {
	var mark uint64
	for _, o := range without(c.List(), m) {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.Status(sctx, o)
		cancel()
		if err == nil {
			mark = max(mark, st.AppliedIndex)
		}
	}
	return mark
}

func (d *Damage) note(m *compose.Member, what string) {
	if d.effects == nil {
		d.effects = map[string]string{}
	}
	if d.effects[m.Name] != "" {
		what = d.effects[m.Name] + "; " + what
	}
	d.effects[m.Name] = what
}

// SlowDisk makes the disks of the members Pick chooses (one random member
// by default) wait Delay before every write and sync, until heal.
type SlowDisk struct {
	Delay time.Duration
	Pick  pick
	hit   []*compose.Member
}

// DefaultDiskDelay is disk-slow's delay when none is given.
const DefaultDiskDelay = 100 * time.Millisecond

func (*SlowDisk) Name() string      { return "disk-slow" }
func (*SlowDisk) usesDisk() bool    { return true }
func (s *SlowDisk) minMembers() int { return s.Pick.minMembers() }

func (s *SlowDisk) Effects() map[string]string {
	return each(s.hit, "every write and sync waits "+cmp.Or(s.Delay, DefaultDiskDelay).String())
}

func (s *SlowDisk) Start(ctx context.Context, c Cluster, r *rand.Rand) ([]*compose.Member, error) {
	dk, ms, err := pickDisks(ctx, c, s.Pick, r)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if err := dk.SlowDisk(ctx, m, cmp.Or(s.Delay, DefaultDiskDelay)); err != nil {
			return ms, err
		}
		s.hit = append(s.hit, m)
	}
	return ms, nil
}

func (s *SlowDisk) Heal(ctx context.Context, c Cluster) error {
	dk, err := c.Disks()
	if err != nil || len(s.hit) == 0 {
		return err
	}
	for len(s.hit) > 0 {
		if err := dk.HealDisk(ctx, s.hit[0]); err != nil {
			return err
		}
		s.hit = s.hit[1:]
	}
	return nil
}

// FailDisk makes the disks of the members Pick chooses (one random member
// by default) fail, until heal: How is compose.DiskEIO (every fsync fails
// with EIO) or compose.DiskENOSPC (every write fails with ENOSPC, as on a
// full disk). The store may stop acknowledging, crash or carry on; it must
// never acknowledge a write it did not persist, which heal tests by
// cutting the power first. A majority's disks failing at once shows a
// store that acknowledges what no member holds.
type FailDisk struct {
	How     string
	Pick    pick
	hit     []*compose.Member
	effects map[string]string
}

func (*FailDisk) Name() string      { return "disk-error" }
func (*FailDisk) usesDisk() bool    { return true }
func (f *FailDisk) minMembers() int { return f.Pick.minMembers() }

func (f *FailDisk) Effects() map[string]string { return f.effects }

// Crashes names the failing members: a store may well crash on a failed
// fsync, as etcd does.
func (f *FailDisk) Crashes() []string {
	var names []string
	for _, m := range f.hit {
		names = append(names, m.Name)
	}
	return names
}

func (f *FailDisk) Start(ctx context.Context, c Cluster, r *rand.Rand) ([]*compose.Member, error) {
	dk, ms, err := pickDisks(ctx, c, f.Pick, r)
	if err != nil {
		return nil, err
	}
	how := cmp.Or(f.How, compose.DiskEIO)
	f.effects = each(ms, map[string]string{compose.DiskEIO: "every fsync fails with EIO", compose.DiskENOSPC: "every write fails with ENOSPC"}[how])
	for _, m := range ms {
		if err := dk.FailDisk(ctx, m, how); err != nil {
			return ms, err
		}
		f.hit = append(f.hit, m)
	}
	return ms, nil
}

// Heal cuts each member's power before it mends the disk, if the member
// still runs: a write it acknowledged though its fsync failed, or that it
// could not write, was never on disk, and must not come back. Then the
// member restarts on a healthy disk.
func (f *FailDisk) Heal(ctx context.Context, c Cluster) error {
	dk, err := c.Disks()
	if err != nil || len(f.hit) == 0 {
		return err
	}
	for len(f.hit) > 0 {
		m := f.hit[0]
		running, _, err := c.State(ctx, m)
		if err != nil {
			return err
		}
		if running {
			said, err := dk.PowerLoss(ctx, m)
			if err != nil {
				return err
			}
			f.effects[m.Name] += "; its power cut before the heal: " + said
		} else {
			f.effects[m.Name] += "; it crashed"
		}
		if err := dk.HealDisk(ctx, m); err != nil {
			return err
		}
		if err := c.Start(ctx, m); err != nil {
			return err
		}
		f.hit = f.hit[1:]
	}
	return nil
}

// each says the same of every member in ms.
func each(ms []*compose.Member, said string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		out[m.Name] = said
	}
	return out
}
