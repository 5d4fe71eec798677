package wal

import (
	"errors"
	"os"
	"syscall"
)

// fdatasync makes f's data durable, with the metadata needed to read it
// back (its size) but not its timestamps: one journal write less than
// fsync on every log write, as etcd does.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if serr = syscall.Fdatasync(int(fd)); !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

// preallocate grows f from size old to size new with allocated blocks that
// read as zeroes. A file system that cannot allocate ahead gets a sparse
// file instead: the log still works, its writes just allocate as they go.
func preallocate(f *os.File, old, new int64) error {
	for {
		err := syscall.Fallocate(int(f.Fd()), 0, old, new-old)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EOPNOTSUPP) {
			return f.Truncate(new)
		}
		return err
	}
}
