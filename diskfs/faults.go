package diskfs

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Op is a kind of disk operation a fault applies to.
type Op int

const (
	OpWrite Op = iota // write(2) and fallocate(2)
	OpFsync           // fsync(2), fdatasync(2) and fsync of a directory
	numOps
)

func (o Op) String() string {
	if o == OpFsync {
		return "fsync"
	}
	return "write"
}

// faults is the slow or failing disk a nemesis asks for. It has its own lock: a delay is slept
// before the model's lock is taken, so a slow disk never holds up a power loss.
type faults struct {
	mu      sync.Mutex
	delay   time.Duration
	errno   [numOps]syscall.Errno
	wake    chan struct{} // closed by heal, to cut delays short
	delayed atomic.Int64  // operations that were made to wait, for tests and reports
}

// before is called by every operation of kind op before it does anything: it waits out the
// delay and returns the errno the operation must fail with, or 0.
func (f *faults) before(op Op) syscall.Errno {
	f.mu.Lock()
	delay, errno, wake := f.delay, f.errno[op], f.wake
	f.mu.Unlock()
	if delay > 0 {
		f.delayed.Add(1)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-wake:
			t.Stop()
		}
	}
	return errno
}

func (f *faults) setDelay(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

func (f *faults) setError(op Op, errno syscall.Errno) {
	if op < 0 || op >= numOps {
		return
	}
	f.mu.Lock()
	f.errno[op] = errno
	f.mu.Unlock()
}

func (f *faults) heal() {
	f.mu.Lock()
	f.delay = 0
	f.errno = [numOps]syscall.Errno{}
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}
