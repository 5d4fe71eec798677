package diskfs

import (
	"context"
	"errors"
	"os"
	"path"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// node is a file, directory or symlink of the mount. It keeps no state: the name it has in
// go-fuse's tree leads to the backing object, and the model does the rest.
type node struct {
	fs.Inode
	d *disk
}

var (
	_ fs.NodeLookuper   = (*node)(nil)
	_ fs.NodeGetattrer  = (*node)(nil)
	_ fs.NodeSetattrer  = (*node)(nil)
	_ fs.NodeOpener     = (*node)(nil)
	_ fs.NodeCreater    = (*node)(nil)
	_ fs.NodeMkdirer    = (*node)(nil)
	_ fs.NodeUnlinker   = (*node)(nil)
	_ fs.NodeRmdirer    = (*node)(nil)
	_ fs.NodeRenamer    = (*node)(nil)
	_ fs.NodeLinker     = (*node)(nil)
	_ fs.NodeSymlinker  = (*node)(nil)
	_ fs.NodeReadlinker = (*node)(nil)
	_ fs.NodeReaddirer  = (*node)(nil)
	_ fs.NodeStatfser   = (*node)(nil)
	_ fs.NodeFsyncer    = (*node)(nil)
)

// rel is the node's path inside the backing directory. An orphan (a file unlinked while open)
// gets a name that does not exist rather than a wrong one.
func (n *node) rel() string { return n.Path(n.Root()) }

func (n *node) child(name string) string { return path.Join(n.rel(), name) }

// errno turns an error from the model or the OS into what FUSE returns.
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

// caller is who asked, so new files belong to them (the store may not run as root).
func caller(ctx context.Context) owner {
	if c, ok := fuse.FromContext(ctx); ok && os.Geteuid() == 0 {
		return owner{int(c.Uid), int(c.Gid)}
	}
	return sameOwner
}

// newChild makes the inode for the backing object at p, filling out its attributes.
func (n *node) newChild(ctx context.Context, p string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var st syscall.Stat_t
	if err := n.d.shared(func() (err error) { st, err = lstat(n.d.abs(p)); return err }); err != nil {
		return nil, errno(err)
	}
	out.Attr.FromStat(&st)
	stable := fs.StableAttr{Mode: st.Mode & unix.S_IFMT, Ino: st.Ino}
	return n.NewInode(ctx, &node{d: n.d}, stable), 0
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := n.child(name)
	if hidden(p) {
		return nil, syscall.ENOENT
	}
	return n.newChild(ctx, p, out)
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	var err error
	if h, ok := f.(*handle); ok {
		st, err = n.d.fstat(h.f)
	} else {
		err = n.d.shared(func() (err error) { st, err = lstat(n.d.abs(n.rel())); return err })
	}
	if err != nil {
		return errno(err)
	}
	out.FromStat(&st)
	return 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	p := n.d.abs(n.rel())
	if size, ok := in.GetSize(); ok {
		var err error
		if h, ok := f.(*handle); ok {
			err = n.d.truncate(h.f, int64(size))
		} else {
			err = n.d.truncatePath(n.rel(), int64(size))
		}
		if err != nil {
			return errno(err)
		}
	}
	// Modes, owners and times are not modelled: they change at once and stay changed.
	err := n.d.shared(func() error {
		if mode, ok := in.GetMode(); ok {
			if err := unix.Fchmodat(unix.AT_FDCWD, p, mode&0o7777, 0); err != nil {
				return err
			}
		}
		uid, uok := in.GetUID()
		gid, gok := in.GetGID()
		if uok || gok {
			u, g := -1, -1
			if uok {
				u = int(uid)
			}
			if gok {
				g = int(gid)
			}
			if err := unix.Fchownat(unix.AT_FDCWD, p, u, g, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
		}
		atime, aok := in.GetATime()
		mtime, mok := in.GetMTime()
		if aok || mok {
			ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
			if aok {
				ts[0] = unix.NsecToTimespec(atime.UnixNano())
			}
			if mok {
				ts[1] = unix.NsecToTimespec(mtime.UnixNano())
			}
			return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	})
	if err != nil {
		return errno(err)
	}
	return n.Getattr(ctx, f, out)
}

// Open never asks for FOPEN_KEEP_CACHE or FOPEN_DIRECT_IO: every open drops the kernel's cached
// pages (so nothing from before a loss survives), and bbolt can still map its file MAP_SHARED.
// Writes through such a mapping reach us only at writeback or msync, not at the store; bbolt
// writes with pwrite and maps read-only, so for etcd this is fine.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f, err := n.d.open(n.rel(), int(flags))
	if err != nil {
		return nil, 0, errno(err)
	}
	return &handle{f}, 0, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	p := n.child(name)
	f, err := n.d.create(p, int(flags), mode, caller(ctx))
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	ch, e := n.newChild(ctx, p, out)
	if e != 0 {
		f.close()
		return nil, nil, 0, e
	}
	return ch, &handle{f}, 0, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := n.child(name)
	if err := n.d.mkdir(p, mode, caller(ctx)); err != nil {
		return nil, errno(err)
	}
	return n.newChild(ctx, p, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := n.child(name)
	if err := n.d.symlink(target, p, caller(ctx)); err != nil {
		return nil, errno(err)
	}
	return n.newChild(ctx, p, out)
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	p := n.child(name)
	if err := n.d.link(t.rel(), p); err != nil {
		return nil, errno(err)
	}
	return n.newChild(ctx, p, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return errno(n.d.unlink(n.child(name)))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return errno(n.d.rmdir(n.child(name)))
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	return errno(n.d.rename(n.child(name), np.child(newName), flags))
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	var target string
	err := n.d.shared(func() (err error) { target, err = os.Readlink(n.d.abs(n.rel())); return err })
	return []byte(target), errno(err)
}

// Readdir reads the whole directory at once, so that no power loss falls in the middle of it.
func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	var list []fuse.DirEntry
	err := n.d.shared(func() error {
		entries, err := os.ReadDir(n.d.abs(n.rel()))
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := n.child(e.Name())
			if hidden(p) {
				continue
			}
			st, err := lstat(n.d.abs(p))
			if err != nil {
				continue // gone since the listing
			}
			list = append(list, fuse.DirEntry{Name: e.Name(), Mode: st.Mode, Ino: st.Ino})
		}
		return nil
	})
	if err != nil {
		return nil, errno(err)
	}
	return fs.NewListDirStream(list), 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.d.root, &st); err != nil {
		return errno(err)
	}
	out.FromStatfsT(&st)
	return 0
}

// Fsync serves fsync and fdatasync of files (FUSE_FSYNC_FDATASYNC is treated as a full fsync)
// and fsync of directories: go-fuse sends a directory's FSYNCDIR here, and without it the store
// would see EOPNOTSUPP.
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if n.IsDir() {
		return errno(n.d.fsyncDir(n.rel()))
	}
	if h, ok := f.(*handle); ok {
		return errno(n.d.fsync(h.f))
	}
	fl, err := n.d.open(n.rel(), unix.O_RDONLY)
	if err != nil {
		return errno(err)
	}
	defer fl.close()
	return errno(n.d.fsync(fl))
}

// handle is an open regular file. It deliberately has no passthrough descriptor: every read
// and write must come through the model.
type handle struct{ f *file }

var (
	_ fs.FileReader    = (*handle)(nil)
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileFlusher   = (*handle)(nil)
	_ fs.FileReleaser  = (*handle)(nil)
	_ fs.FileAllocater = (*handle)(nil)
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.f.d.readAt(h.f, dest, off)
	if err != nil {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.f.d.writeAt(h.f, data, off)
	return uint32(n), errno(err)
}

// Flush is called at every close until it answers ENOSYS, which makes the kernel stop sending
// it: closing makes nothing durable, and a close then never waits for the server (a process
// exiting with its own mount open would otherwise wait for itself).
func (h *handle) Flush(ctx context.Context) syscall.Errno { return syscall.ENOSYS }

func (h *handle) Release(ctx context.Context) syscall.Errno { return errno(h.f.close()) }

func (h *handle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	return errno(h.f.d.allocate(h.f, int64(off), int64(size), mode))
}
