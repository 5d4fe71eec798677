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
