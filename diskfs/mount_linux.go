package diskfs

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// DefaultCommitInterval is how often Ext4 mode commits the namespace journal unless told
// otherwise, like ext4's commit=5.
const DefaultCommitInterval = 5 * time.Second

// DefaultWriteback is how long a file's data stays dirty before it becomes durable on its own,
// unless told otherwise. Linux writes dirty pages back once they are 30 s old
// (vm.dirty_expire_centisecs); this is shorter because a test runs for a minute or so: a store
// that never fsyncs then loses its last few seconds of acknowledged writes, which is the evidence
// worth seeing, not everything since it booted (its cluster bootstrap too), which only keeps the
// cluster from ever coming back. Writing back sooner than the kernel would only makes the disk
// more forgiving, so it can hide a bug but never raise a false alarm.
const DefaultWriteback = 5 * time.Second

// Options configure a mount.
type Options struct {
	Mode Mode // Ext4 (the zero value) or Strict
	// CommitInterval is how often Ext4 mode commits the journal on its own: 0 means
	// DefaultCommitInterval, a negative value never. Strict mode ignores it.
	CommitInterval time.Duration
	// Writeback is how long a file's data may stay dirty before it becomes durable without a
	// sync, as the kernel's flusher writes it back: the file's content and size, never a
	// namespace change. 0 means DefaultWriteback, a negative value never (then nothing written
	// survives a loss without a sync, as in LazyFS).
	Writeback time.Duration
	Name      string // shows as the mount's type fuse.<Name>; "diskfs" if empty
}

// FS is a mounted diskfs.
type FS struct {
	d          *disk
	server     *fuse.Server
	mountpoint string
	stop       chan struct{} // stops the commit and writeback timers
}

// Mount serves the backing directory at mountpoint. It mounts with mount(2) directly, never
// fusermount (which a FROM scratch image does not have), so it needs /dev/fuse and
// CAP_SYS_ADMIN. Whatever the backing directory holds counts as durable.
func Mount(backing, mountpoint string, opts Options) (*FS, error) {
	d, err := newDisk(backing, opts.Mode)
	if err != nil {
		return nil, err
	}
	d.expire = orDefault(opts.Writeback, DefaultWriteback)
	name := opts.Name
	if name == "" {
		name = "diskfs"
	}
	// Nothing may stay cached in the kernel across a loss: no entry, attribute or negative
	// caching, no writeback cache (write(2) would return before the data reaches us, and dirty
	// pages would outlive the loss), no passthrough (I/O would go around the model).
	var zero time.Duration
	root := &node{d: d}
	server, err := fs.Mount(mountpoint, root, &fs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			AllowOther:           true, // the store may run as another user
			MaxWrite:             1 << 20,
			DirectMountStrict:    true,
			FsName:               d.root,
			Name:                 name,
			DisabledCapabilities: fuse.CAP_PASSTHROUGH | fuse.CAP_WRITEBACK_CACHE,
		},
	})
	if err != nil {
		d.close()
		return nil, fmt.Errorf("diskfs: mount %s on %s: %w", backing, mountpoint, err)
	}
	fsys := &FS{d: d, server: server, mountpoint: mountpoint, stop: make(chan struct{})}
	commit := orDefault(opts.CommitInterval, DefaultCommitInterval)
	if opts.Mode != Ext4 {
		commit = -1
	}
	go d.flush(commit, fsys.stop)
	return fsys, nil
}

// orDefault resolves an option where 0 means def.
func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// PowerLoss forgets everything not yet durable, as if the machine lost power. The caller must
// have killed every process using the mount and waited for it to exit. Handles still open
// afterwards fail with EIO. It returns what was dropped.
//
// The kernel needs no explicit invalidation afterwards: with zero entry timeouts every path
// walk looks the names up again (which also refreshes attributes and go-fuse's tree), handles
// are opened without FOPEN_KEEP_CACHE so an open drops cached pages, and the revert changes the
// mtime of every file it touches, which makes the kernel drop their pages at the next lookup.
func (fsys *FS) PowerLoss() (Loss, error) {
	return fsys.d.powerLoss()
}

// Unsynced reports what a power loss would drop now.
func (fsys *FS) Unsynced() Loss { return fsys.d.unsynced() }

// Sync makes everything durable, e.g. once the store has booted the first time.
func (fsys *FS) Sync() error { return fsys.d.sync() }

// SetDelay makes every write, fsync, fdatasync and directory fsync wait d first, until Heal.
func (fsys *FS) SetDelay(d time.Duration) { fsys.d.faults.setDelay(d) }

// SetError makes every operation of kind op fail with errno (EIO or ENOSPC, say), until Heal. A
// failed write changes nothing; a failed fsync makes nothing durable.
func (fsys *FS) SetError(op Op, errno syscall.Errno) { fsys.d.faults.setError(op, errno) }

// Heal clears the delay and the errors, and cuts delays in progress short.
func (fsys *FS) Heal() { fsys.d.faults.heal() }

// Mountpoint is where the FS is mounted.
func (fsys *FS) Mountpoint() string { return fsys.mountpoint }

// Unmount makes everything durable and unmounts. A mount whose server does not answer, or which
// is still in use, is detached instead.
func (fsys *FS) Unmount() error {
	select {
	case <-fsys.stop:
		return nil // unmounted already
	default:
	}
	close(fsys.stop)
	syncErr := fsys.d.sync()
	done := make(chan error, 1)
	go func() { done <- fsys.server.Unmount() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		err = errors.New("server did not stop")
	}
	if err != nil {
		err = Detach(fsys.mountpoint)
	}
	fsys.d.close()
	return errors.Join(syncErr, err)
}

// Detach lazily unmounts whatever is mounted at mountpoint (umount2 with MNT_DETACH), e.g. the
// ENOTCONN mount a dead daemon left. Nothing mounted there is not an error.
func Detach(mountpoint string) error {
	err := unix.Unmount(mountpoint, unix.MNT_DETACH)
	if err == unix.EINVAL || err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return fmt.Errorf("diskfs: detach %s: %w", mountpoint, err)
	}
	return nil
}
