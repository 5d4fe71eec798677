package diskfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Mode says which syncs make namespace changes durable.
type Mode int

const (
	// Ext4 is how ext4 and xfs behave in practice: every fsync, fdatasync or directory fsync
	// commits all namespace changes so far, and so does a timer (ext4's commit=5).
	Ext4 Mode = iota
	// Strict is POSIX: only an fsync of a directory makes its changes durable (with every
	// change before the last one to it); fsync of a file commits nothing in the namespace.
	Strict
)

// ParseMode reads a Mode by its name, as String writes it; no name is Ext4,
// the zero Mode.
func ParseMode(name string) (Mode, error) {
	if name == "" {
		return Ext4, nil
	}
	for _, m := range []Mode{Ext4, Strict} {
		if name == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("disk mode %q: want ext4 (any fsync commits every directory change, as ext4 does) or strict (only a directory's own fsync commits its changes, as POSIX promises)", name)
}

func (m Mode) String() string {
	if m == Strict {
		return "strict"
	}
	return "ext4"
}

// stageName is the hidden directory inside the backing directory where removed and replaced
// entries wait until they can no longer come back.
const stageName = ".diskfs"

// handleWait bounds how long a power loss waits for the kernel to release the handles of the
// processes the caller killed (RELEASE arrives asynchronously after their descriptors close).
const handleWait = 2 * time.Second

// owner is who a new file should belong to; a negative uid leaves the daemon's own.
type owner struct{ uid, gid int }

var sameOwner = owner{-1, -1}

// disk is the undo model over a backing directory. Every change goes to the backing directory at
// once; disk remembers how to take back whatever is not durable yet.
type disk struct {
	root, stage string
	mode        Mode

	// mu is held for writing by every change and by powerLoss (so a loss waits for changes in
	// flight and none lands half-reverted), for reading by everything else.
	mu      sync.RWMutex
	gen     uint64           // bumped by every power loss; older handles fail with EIO
	undo    map[uint64]*undo // by inode number: files changed since their last sync
	journal []entry          // namespace operations not yet committed, oldest first
	seq     uint64           // names parked entries uniquely
	filesMu sync.Mutex       // guards files, which close touches without mu
	files   map[*file]bool   // open handles
	wait    time.Duration    // handleWait, shorter in tests
	faults  faults
	// expire is how long a file's data may stay dirty before writeback makes it durable; a
	// negative value never. Mount sets it before the flusher starts.
	expire time.Duration
	now    func() time.Time // the clock of dirty times, a fake one in tests
}

func newDisk(root string, mode Mode) (*disk, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, &os.PathError{Op: "diskfs", Path: root, Err: syscall.ENOTDIR}
	}
	stage := filepath.Join(root, stageName)
	// What a daemon that died left parked here was removed by operations it never committed;
	// the backing directory (the current state) is all a process crash leaves.
	if err := os.RemoveAll(stage); err != nil {
		return nil, err
	}
	if err := os.Mkdir(stage, 0o700); err != nil {
		return nil, err
	}
	return &disk{
		root: root, stage: stage, mode: mode,
		undo: map[uint64]*undo{}, files: map[*file]bool{}, wait: handleWait,
		faults: faults{wake: make(chan struct{})}, expire: -1, now: time.Now,
	}, nil
}

func (d *disk) abs(p string) string { return filepath.Join(d.root, p) }

// hidden reports whether p is the staging directory or inside it, which nobody may touch.
func hidden(p string) bool { return p == stageName || strings.HasPrefix(p, stageName+"/") }

func lstat(path string) (syscall.Stat_t, error) {
	var st syscall.Stat_t
	err := syscall.Lstat(path, &st)
	return st, err
}

func isDir(st syscall.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// shared runs fn, which may read or change the backing directory but not the model, so that it
// never overlaps a power loss.
func (d *disk) shared(fn func() error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return fn()
}

// file is an open handle on a regular file of the backing directory.
type file struct {
	d    *disk
	fd   int
	ino  uint64
	gen  uint64
	sync bool   // opened O_SYNC or O_DSYNC: every write is also a data sync
	path string // guarded by d.mu; kept up to date across renames, for reports
}

func (d *disk) open(p string, flags int) (*file, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.openLocked(p, flags)
}

// openLocked opens p read-write whatever flags ask: an undo record needs to read what a write
// replaces, and the kernel has already checked the access mode. O_APPEND must not reach the
// backing file (pwrite would then ignore the offsets the kernel computed), nor O_DIRECT or
// O_SYNC: syncing is ours to model.
func (d *disk) openLocked(p string, flags int) (*file, error) {
	fd, err := unix.Open(d.abs(p), unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err == unix.EROFS || err == unix.EACCES || err == unix.ETXTBSY {
		fd, err = unix.Open(d.abs(p), flags&unix.O_ACCMODE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return nil, err
	}
	return d.track(fd, p, flags)
}

func (d *disk) track(fd int, p string, flags int) (*file, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := &file{d: d, fd: fd, ino: st.Ino, gen: d.gen, path: p, sync: flags&(unix.O_SYNC|unix.O_DSYNC) != 0}
	d.filesMu.Lock()
	d.files[f] = true
	d.filesMu.Unlock()
	return f, nil
}

func (d *disk) openHandles() int {
	d.filesMu.Lock()
	defer d.filesMu.Unlock()
	return len(d.files)
}

// close releases a handle. It does not take mu: a power loss waits for handles to close.
func (f *file) close() error {
	f.d.filesMu.Lock()
	open := f.d.files[f]
	delete(f.d.files, f)
	f.d.filesMu.Unlock()
	if !open {
		return nil
	}
	return unix.Close(f.fd)
}

// stale reports a handle opened before the last power loss: it must not see or change the
// reverted state. Callers hold mu.
func (f *file) stale() error {
	if f.gen != f.d.gen {
		return syscall.EIO
	}
	return nil
}

func (d *disk) readAt(f *file, buf []byte, off int64) (int, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if err := f.stale(); err != nil {
		return 0, err
	}
	return unix.Pread(f.fd, buf, off)
}

// fstat works on stale handles too: go-fuse answers a GETATTR without a handle with any open
// one, and the descriptor still shows the reverted file truthfully.
func (d *disk) fstat(f *file) (syscall.Stat_t, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var st syscall.Stat_t
	err := syscall.Fstat(f.fd, &st)
	return st, err
}

// record returns f's undo record, starting one (with the current size as the durable size) at
// the first change since the last sync.
func (d *disk) record(f *file) (*undo, error) {
	if u := d.undo[f.ino]; u != nil {
		u.path = f.path
		return u, nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(f.fd, &st); err != nil {
		return nil, err
	}
	fd, err := unix.FcntlInt(uintptr(f.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	u := &undo{fd: fd, size: st.Size, path: f.path, dirty: d.now()}
	d.undo[f.ino] = u
	return u, nil
}

// forget drops the undo record of inode ino: what it holds now is what a loss leaves.
func (d *disk) forget(ino uint64) {
	if u := d.undo[ino]; u != nil {
		unix.Close(u.fd)
		delete(d.undo, ino)
	}
}

func (d *disk) writeAt(f *file, data []byte, off int64) (int, error) {
	if errno := d.faults.before(OpWrite); errno != 0 {
		return 0, errno
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.stale(); err != nil {
		return 0, err
	}
	u, err := d.record(f)
	if err != nil {
		return 0, err
	}
	if err := u.preserve(off, off+int64(len(data))); err != nil {
		return 0, err
	}
	n, err := unix.Pwrite(f.fd, data, off)
	if err != nil {
		return n, err
	}
	u.written = u.written.add(off, off+int64(n))
	if f.sync {
		err = d.syncLocked(f)
	}
	return n, err
}

func (d *disk) truncate(f *file, size int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.stale(); err != nil {
		return err
	}
	return d.truncateLocked(f, size)
}

func (d *disk) truncateLocked(f *file, size int64) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(f.fd, &st); err != nil {
		return err
	}
	if size != st.Size {
		u, err := d.record(f)
		if err != nil {
			return err
		}
		if err := u.preserve(size, st.Size); err != nil {
			return err
		}
		u.written = u.written.cut(size)
	}
	return unix.Ftruncate(f.fd, size)
}

// truncatePath is truncate(2) on a name rather than a handle.
func (d *disk) truncatePath(p string, size int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.openLocked(p, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer f.close()
	return d.truncateLocked(f, size)
}

// allocate is fallocate(2) for the modes etcd and Go programs use: 0 may grow the file, which
// is a size change like any other; KEEP_SIZE changes neither size nor content.
func (d *disk) allocate(f *file, off, length int64, mode uint32) error {
	if mode != 0 && mode != unix.FALLOC_FL_KEEP_SIZE {
		return syscall.ENOTSUP
	}
	if errno := d.faults.before(OpWrite); errno != 0 {
		return errno
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.stale(); err != nil {
		return err
	}
	if mode == 0 {
		var st syscall.Stat_t
		if err := syscall.Fstat(f.fd, &st); err != nil {
			return err
		}
		if off+length > st.Size {
			if _, err := d.record(f); err != nil {
				return err
			}
		}
	}
	return unix.Fallocate(f.fd, mode, off, length)
}

// fsync makes f's data and size durable (fsync and fdatasync alike); in Ext4 mode it also
// commits the namespace journal.
func (d *disk) fsync(f *file) error {
	if errno := d.faults.before(OpFsync); errno != 0 {
		return errno
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.stale(); err != nil {
		return err
	}
	return d.syncLocked(f)
}

func (d *disk) syncLocked(f *file) error {
	d.forget(f.ino)
	if d.mode == Ext4 {
		return d.commitLocked(len(d.journal))
	}
	return nil
}

// fsyncDir makes the entries of directory p durable: in Strict mode by committing the journal
// through the last operation that changed p, in Ext4 mode by committing all of it.
func (d *disk) fsyncDir(p string) error {
	if errno := d.faults.before(OpFsync); errno != 0 {
		return errno
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mode == Ext4 {
		return d.commitLocked(len(d.journal))
	}
	st, err := lstat(d.abs(p))
	if err != nil {
		return err
	}
	n := 0
	for i, e := range d.journal {
		if e.touchesDir(st.Ino) {
			n = i + 1
		}
	}
	return d.commitLocked(n)
}

// commit commits the whole journal, as an ext4 journal commit does.
func (d *disk) commit() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.commitLocked(len(d.journal))
}

// commitLocked makes the oldest n journal entries durable and deletes what they parked.
func (d *disk) commitLocked(n int) error {
	if n == 0 {
		return nil
	}
	var errs []error
	freed := false
	for _, e := range d.journal[:n] {
		errs = append(errs, e.commit(d.stage))
		freed = freed || e.staged != ""
	}
	d.journal = append([]entry(nil), d.journal[n:]...)
	if freed {
		d.forgetUnlinked()
	}
	return errors.Join(errs...)
}

// forgetUnlinked drops the undo records of files no name leads to any more: no loss can bring
// them back.
func (d *disk) forgetUnlinked() {
	for ino, u := range d.undo {
		var st syscall.Stat_t
		if syscall.Fstat(u.fd, &st) == nil && st.Nlink == 0 {
			d.forget(ino)
		}
	}
}

// writeback makes the data of every file dirty for at least d.expire at now durable, as the
// kernel's flusher writes back an inode whose oldest dirty page has expired: the whole file, like
// an fsync of it, except that it commits nothing in the journal (writeback writes data, not
// directory entries), so a file whose name was never made durable still vanishes.
func (d *disk) writeback(now time.Time) {
	if d.expire < 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for ino, u := range d.undo {
		if now.Sub(u.dirty) >= d.expire {
			d.forget(ino)
		}
	}
}

// flush runs the background work of a kernel until stop is closed: the journal commit every
// commit (ext4's commit=; never if not positive) and writeback, checked every second or every
// d.expire if shorter (the flusher wakes every 5 s; checking more often costs little here).
func (d *disk) flush(commit time.Duration, stop <-chan struct{}) {
	var commits, flushes <-chan time.Time
	if commit > 0 {
		t := time.NewTicker(commit)
		defer t.Stop()
		commits = t.C
	}
	if d.expire > 0 {
		t := time.NewTicker(min(d.expire, time.Second))
		defer t.Stop()
		flushes = t.C
	}
	if commits == nil && flushes == nil {
		return
	}
	for {
		select {
		case <-commits:
			d.commit()
		case now := <-flushes:
			d.writeback(now)
		case <-stop:
			return
		}
	}
}

// sync makes everything durable: all file data and the whole journal.
func (d *disk) sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for ino := range d.undo {
		d.forget(ino)
	}
	return d.commitLocked(len(d.journal))
}

// unsynced reports what a power loss would drop now.
func (d *disk) unsynced() Loss {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.unsyncedLocked()
}

func (d *disk) unsyncedLocked() Loss {
	var b lossBuilder
	for _, u := range d.undo {
		var st syscall.Stat_t
		if syscall.Fstat(u.fd, &st) != nil {
			continue
		}
		if n := u.written.total(); n > 0 {
			b.Bytes += n
			b.Files++
			b.files.add(u.path)
		} else if u.resized(st.Size) {
			b.Resized++
			b.resized.add(u.path)
		}
	}
	for _, e := range d.journal {
		b.Entries++
		b.entries.add(e.path)
		if e.to != "" {
			b.entries.add(e.to)
		}
	}
	return b.done()
}

// powerLoss forgets everything not durable: file data goes back to its last sync, and the
// uncommitted journal is undone newest first. Handles open before it fail with EIO afterwards.
func (d *disk) powerLoss() (Loss, error) {
	for deadline := time.Now().Add(d.wait); d.openHandles() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	loss := d.unsyncedLocked()
	var errs []error
	for ino, u := range d.undo {
		errs = append(errs, u.revert())
		d.forget(ino)
	}
	for i := len(d.journal) - 1; i >= 0; i-- {
		errs = append(errs, d.journal[i].undo(d.root, d.stage))
	}
	d.journal = nil
	return loss, errors.Join(errs...)
}

// close drops the undo records; the model is unusable afterwards.
func (d *disk) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for ino := range d.undo {
		d.forget(ino)
	}
}

// dirInos returns the inode numbers of directories dirs, for the journal.
func (d *disk) dirInos(dirs ...string) ([]uint64, error) {
	inos := make([]uint64, len(dirs))
	for i, dir := range dirs {
		st, err := lstat(d.abs(dir))
		if err != nil {
			return nil, err
		}
		inos[i] = st.Ino
	}
	return inos, nil
}

// parkName returns a fresh name under the staging directory.
func (d *disk) parkName() string {
	d.seq++
	return strconv.FormatUint(d.seq, 10)
}

// created journals a new entry at p made by op, which runs only once p's directory is known.
func (d *disk) created(p string, kind entryKind, op func() error) error {
	if hidden(p) {
		return syscall.EPERM
	}
	dirs, err := d.dirInos(parent(p))
	if err != nil {
		return err
	}
	if err := op(); err != nil {
		return err
	}
	d.journal = append(d.journal, entry{kind: kind, path: p, dirs: dirs})
	return nil
}

// chown gives a new entry to the caller, as a kernel filesystem would.
func (d *disk) chown(p string, own owner) error {
	if own.uid < 0 {
		return nil
	}
	return unix.Fchownat(unix.AT_FDCWD, d.abs(p), own.uid, own.gid, unix.AT_SYMLINK_NOFOLLOW)
}

// create makes a new regular file at p and opens it. The mode is set exactly (the daemon's
// umask must not apply a second time; the kernel applied the caller's).
func (d *disk) create(p string, flags int, mode uint32, own owner) (*file, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var fd int
	err := d.created(p, entryCreate, func() error {
		var err error
		fd, err = unix.Open(d.abs(p), unix.O_RDWR|unix.O_CLOEXEC|unix.O_CREAT|unix.O_EXCL, mode&0o7777)
		if err != nil {
			return err
		}
		if err := unix.Fchmod(fd, mode&0o7777); err != nil {
			unix.Close(fd)
			return err
		}
		return d.chown(p, own)
	})
	if err == unix.EEXIST && flags&unix.O_EXCL == 0 {
		// The kernel thought p did not exist; open it as open(2) without O_EXCL would.
		f, err := d.openLocked(p, flags)
		if err == nil && flags&unix.O_TRUNC != 0 {
			err = d.truncateLocked(f, 0)
		}
		return f, err
	}
	if err != nil {
		return nil, err
	}
	return d.track(fd, p, flags)
}

func (d *disk) mkdir(p string, mode uint32, own owner) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.created(p, entryMkdir, func() error {
		if err := unix.Mkdir(d.abs(p), mode&0o7777); err != nil {
			return err
		}
		if err := unix.Chmod(d.abs(p), mode&0o7777); err != nil {
			return err
		}
		return d.chown(p, own)
	})
}

func (d *disk) symlink(target, p string, own owner) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.created(p, entryCreate, func() error {
		if err := unix.Symlink(target, d.abs(p)); err != nil {
			return err
		}
		return d.chown(p, own)
	})
}

// link adds the name p for the file at old. Undo data belongs to the inode, so both names
// share it.
func (d *disk) link(old, p string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if hidden(old) {
		return syscall.EPERM
	}
	return d.created(p, entryCreate, func() error {
		return unix.Linkat(unix.AT_FDCWD, d.abs(old), unix.AT_FDCWD, d.abs(p), 0)
	})
}

func (d *disk) unlink(p string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := lstat(d.abs(p))
	if err != nil {
		return err
	}
	if isDir(st) {
		return syscall.EISDIR
	}
	return d.remove(p, entryCreate)
}

func (d *disk) rmdir(p string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := lstat(d.abs(p))
	if err != nil {
		return err
	}
	if !isDir(st) {
		return syscall.ENOTDIR
	}
	if empty, err := emptyDir(d.abs(p)); err != nil {
		return err
	} else if !empty {
		return syscall.ENOTEMPTY
	}
	return d.remove(p, entryMkdir)
}

// remove takes p away. If p was made by an uncommitted operation that nothing later involves,
// that operation is simply forgotten and p really removed: undoing both would be a no-op.
// Otherwise p is parked in the staging directory so that undoing can put it back.
func (d *disk) remove(p string, made entryKind) error {
	if hidden(p) || p == "" {
		return syscall.EPERM
	}
	if i, ok := d.lastMade(p, made); ok {
		if err := os.Remove(d.abs(p)); err != nil {
			return err
		}
		d.journal = append(d.journal[:i], d.journal[i+1:]...)
		d.forgetUnlinked()
		return nil
	}
	dirs, err := d.dirInos(parent(p))
	if err != nil {
		return err
	}
	staged := d.parkName()
	if err := os.Rename(d.abs(p), filepath.Join(d.stage, staged)); err != nil {
		return err
	}
	d.journal = append(d.journal, entry{kind: entryRemove, path: p, staged: staged, dirs: dirs})
	return nil
}

// lastMade finds the uncommitted entry of kind that made p, if it is the newest one involving p.
func (d *disk) lastMade(p string, kind entryKind) (int, bool) {
	for i := len(d.journal) - 1; i >= 0; i-- {
		if e := d.journal[i]; e.touches(p) {
			return i, e.kind == kind && e.path == p
		}
	}
	return 0, false
}

// rename moves old to p (RENAME_NOREPLACE supported, RENAME_EXCHANGE not). A replaced target is
// parked first, so undoing the rename brings it back with its own durable content.
func (d *disk) rename(old, p string, flags uint32) error {
	if flags&^unix.RENAME_NOREPLACE != 0 {
		return syscall.ENOTSUP
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if hidden(old) || hidden(p) {
		return syscall.EPERM
	}
	src, err := lstat(d.abs(old))
	if err != nil {
		return err
	}
	dirs, err := d.dirInos(parent(old), parent(p))
	if err != nil {
		return err
	}
	e := entry{kind: entryRename, path: old, to: p, dirs: dirs}
	dst, err := lstat(d.abs(p))
	switch {
	case err == unix.ENOENT:
		if err := unix.Renameat2(unix.AT_FDCWD, d.abs(old), unix.AT_FDCWD, d.abs(p), uint(flags)); err != nil {
			return err
		}
	case err != nil:
		return err
	case flags&unix.RENAME_NOREPLACE != 0:
		return syscall.EEXIST
	case dst.Ino == src.Ino:
		return nil // two names of one file: rename does nothing
	default:
		if e.staged, err = d.replace(old, p, src, dst); err != nil {
			return err
		}
	}
	d.journal = append(d.journal, e)
	d.renamed(old, p)
	return nil
}

// replace renames old over the existing p, parking p under a new staging name it returns.
func (d *disk) replace(old, p string, src, dst syscall.Stat_t) (string, error) {
	staged := d.parkName()
	park := filepath.Join(d.stage, staged)
	if !isDir(dst) {
		if isDir(src) {
			return "", syscall.ENOTDIR
		}
		// A second link parks the target without p ever being missing from the backing dir.
		if err := unix.Linkat(unix.AT_FDCWD, d.abs(p), unix.AT_FDCWD, park, 0); err != nil {
			return "", err
		}
		if err := os.Rename(d.abs(old), d.abs(p)); err != nil {
			os.Remove(park)
			return "", err
		}
		return staged, nil
	}
	if !isDir(src) {
		return "", syscall.EISDIR
	}
	if empty, err := emptyDir(d.abs(p)); err != nil {
		return "", err
	} else if !empty {
		return "", syscall.ENOTEMPTY
	}
	if err := os.Rename(d.abs(p), park); err != nil {
		return "", err
	}
	if err := os.Rename(d.abs(old), d.abs(p)); err != nil {
		os.Rename(park, d.abs(p))
		return "", err
	}
	return staged, nil
}

// renamed keeps the names of undo records and open handles current, for reports.
func (d *disk) renamed(old, p string) {
	move := func(q string) string {
		if q == old || under(q, old) {
			return p + q[len(old):]
		}
		return q
	}
	for _, u := range d.undo {
		u.path = move(u.path)
	}
	d.filesMu.Lock()
	for f := range d.files {
		f.path = move(f.path)
	}
	d.filesMu.Unlock()
}

func emptyDir(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return false, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return true, nil
}
