package diskfs

import (
	"fmt"
	"syscall"
)

// ParseFailure reads how the nemesis asks a disk to fail: "eio", every
// fsync fails with EIO (a sync that failed, as on a dying disk), or
// "enospc", every write fails with ENOSPC (a full disk).
func ParseFailure(how string) (Op, syscall.Errno, error) {
	switch how {
	case "eio":
		return OpFsync, syscall.EIO, nil
	case "enospc":
		return OpWrite, syscall.ENOSPC, nil
	}
	return 0, 0, fmt.Errorf("disk failure %q: want eio (fsyncs fail) or enospc (writes fail)", how)
}
