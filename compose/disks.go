package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Disks are the members' disks, as disk faults cut their power, damage
// their files, slow them down and make them fail. They exist in a cluster
// started with Config.Disk: each member's data directory is then served
// through faultline's own filesystem layer (package diskfs), which knows
// what the member has written but not yet made durable with fsync.
//
// A power loss and a damage leave the member down, as a kill does; Start
// runs it again.
type Disks interface {
	// PowerLoss cuts m's power: its server is SIGKILLed, then every write
	// it had not made durable is forgotten (file contents and sizes go
	// back to their last fsync, directory changes not yet fsynced are
	// undone). It says what was dropped.
	PowerLoss(ctx context.Context, m *Member) (string, error)
	// Damage SIGKILLs m's server and damages one of its files of class
	// (FileWAL or FileSnap, as the target names them), chosen with seed:
	// Flip flips one bit, Cut cuts the file's tail. It says what it did.
	Damage(ctx context.Context, m *Member, how Damage, class string, seed uint64) (string, error)
	// SlowDisk makes each of m's writes and syncs wait d first.
	SlowDisk(ctx context.Context, m *Member, d time.Duration) error
	// FailDisk makes m's disk fail: DiskEIO fails every fsync with EIO,
	// DiskENOSPC every write with ENOSPC.
	FailDisk(ctx context.Context, m *Member, how string) error
	// HealDisk ends m's slow or failing disk, whether m runs or not.
	HealDisk(ctx context.Context, m *Member) error
}

// Damage is how Disks.Damage damages a file, as damage.Apply names it.
type Damage string

const (
	// Flip flips one random bit in the file's used part (up to its last
	// byte that is not zero: preallocated logs end in zeroes).
	Flip Damage = "flip"
	// Cut cuts the file at a random point in the last 32 KiB of its used
	// part.
	Cut Damage = "cut"
)

// How FailDisk fails a disk.
const (
	DiskEIO    = "eio"
	DiskENOSPC = "enospc"
)

// ErrNoDisks says why a cluster has no Disks.
var ErrNoDisks = errors.New("the cluster was started without faultline's filesystem layer (compose.Config.Disk)")

// Disks are the members' disks, or ErrNoDisks for a cluster started
// without the filesystem layer.
func (c *Cluster) Disks() (Disks, error) {
	if !c.disk {
		return nil, ErrNoDisks
	}
	return c.run, nil
}

// globs are the target's files of class, or an error saying that the
// target names none.
func (t Target) globs(class string) ([]string, error) {
	g := t.Files[class]
	if len(g) == 0 {
		return nil, fmt.Errorf("the %s target names no %s files to damage (a target file's \"files\")", t.Name, class)
	}
	return g, nil
}

// DiskNeeds says what this machine lacks to serve members' data through
// the filesystem layer on runtime, or nil: FUSE (/dev/fuse) everywhere,
// and, for local members, whose layer the harness mounts itself, root.
func DiskNeeds(runtime string) error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("disk faults need FUSE, and this machine has no /dev/fuse (%v): load the fuse module (modprobe fuse)", err)
	}
	if runtime == Local && os.Geteuid() != 0 {
		return errors.New("disk faults with --runtime local need root: the harness mounts its filesystem layer over each member's data directory; run as root, or use --runtime docker")
	}
	return nil
}

// The containers' disks are the agent's commands, run in the member with
// docker exec; the agent serving the member does the work. Their argv must
// match what cmd/agent parses.

func (r *containers) PowerLoss(ctx context.Context, m *Member) (string, error) {
	return r.crash(ctx, m, "power-loss")
}

func (r *containers) Damage(ctx context.Context, m *Member, how Damage, class string, seed uint64) (string, error) {
	globs, err := r.target.globs(class)
	if err != nil {
		return "", err
	}
	return r.crash(ctx, m, append([]string{string(how), strconv.FormatUint(seed, 10)}, globs...)...)
}

// crash has the agent SIGKILL m's server and then do to its disk what args
// say; the agent then waits for the container to be killed, which this
// does, so the member is down as after a kill.
func (r *containers) crash(ctx context.Context, m *Member, args ...string) (string, error) {
	out, err := r.agent(ctx, m, append([]string{"disk"}, args...)...)
	if err != nil {
		return "", err
	}
	if err := r.kill(ctx, m); err != nil {
		return "", fmt.Errorf("stopping the container after the crash: %w", err)
	}
	return strings.TrimSpace(out), nil
}

func (r *containers) SlowDisk(ctx context.Context, m *Member, d time.Duration) error {
	_, err := r.agent(ctx, m, "disk", "slow", d.String())
	return err
}

func (r *containers) FailDisk(ctx context.Context, m *Member, how string) error {
	_, err := r.agent(ctx, m, "disk", "fail", how)
	return err
}

// HealDisk has nothing to do for a stopped container: its layer went with
// it, and a restart mounts a fresh one.
func (r *containers) HealDisk(ctx context.Context, m *Member) error {
	if running, _, err := r.state(ctx, m); err != nil || !running {
		return err
	}
	_, err := r.agent(ctx, m, "disk", "heal")
	return err
}
