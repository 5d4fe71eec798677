package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/faultline/faultline/damage"
	"github.com/faultline/faultline/diskfs"
)

// diskCommand does one disk command of the serving agent (compose/disks.go
// sends them):
//
//	crash                 SIGKILL the server, nothing more
//	power-loss            SIGKILL the server, then forget what it did not fsync
//	flip|cut SEED GLOB... SIGKILL the server, then damage one of these files
//	slow D                delay each write and sync D
//	fail eio|enospc       fail every fsync with EIO, or every write with ENOSPC
//	heal                  end slow and failing
//
// After crash, power-loss, flip and cut the agent waits for the container
// to be killed. A container with a layer is killed that way, never at
// once: its server, killed together with the agent that serves its files,
// can hang for good in the kernel closing them (FUSE flushes each file on
// its last close, and nobody is left to answer).
func (s *server) diskCommand(f []string) (string, error) {
	if len(f) == 1 && f[0] == "crash" {
		return s.crash(func() (string, error) { return "killed", nil })
	}
	if s.disk == nil {
		return "", errors.New("no filesystem layer in this member (it was not started with faultline-agent serve -disk)")
	}
	switch {
	case len(f) == 1 && f[0] == "power-loss":
		return s.crash(func() (string, error) {
			loss, err := s.disk.PowerLoss()
			return loss.String(), err
		})
	case len(f) >= 3 && (f[0] == "flip" || f[0] == "cut"):
		seed, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return "", fmt.Errorf("disk %s %q: want a seed, a whole number", f[0], f[1])
		}
		return s.crash(func() (string, error) { return damage.Apply(s.dataDir, f[0], f[2:], seed) })
	case len(f) == 2 && f[0] == "slow":
		d, err := time.ParseDuration(f[1])
		if err != nil || d < 0 {
			return "", fmt.Errorf("disk slow %q: want a non-negative duration", f[1])
		}
		s.disk.SetDelay(d)
		return "slow " + d.String(), nil
	case len(f) == 2 && f[0] == "fail":
		op, errno, err := diskfs.ParseFailure(f[1])
		if err != nil {
			return "", err
		}
		s.disk.SetError(op, errno)
		return "failing " + f[1], nil
	case len(f) == 1 && f[0] == "heal":
		s.disk.Heal()
		return "healed", nil
	}
	return "", fmt.Errorf("unknown disk command %q", f)
}
