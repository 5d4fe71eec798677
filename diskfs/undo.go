package diskfs

import (
	"slices"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// extent is the content one byte range of a file had at its last sync.
type extent struct {
	off, n int64
	data   []byte // nil: n zero bytes (preallocated files overwrite zeroes all the time)
}

func (e extent) end() int64 { return e.off + e.n }

// undo is what it takes to put one inode back as it was at its last sync. Only bytes below size
// need saving: anything beyond it goes when the file is truncated back to size.
type undo struct {
	fd      int       // a descriptor of our own, so a revert works after every handle has closed
	size    int64     // the durable size
	saved   []extent  // sorted, non-overlapping; the first old value of a range wins
	written spans     // what was written since the sync and is still there, for reports only
	dirty   time.Time // when the first change since the sync came, for writeback
	path    string    // last known name, for reports only
}

// gaps returns the parts of [off, end) below the durable size that nothing saved covers yet.
func (u *undo) gaps(off, end int64) [][2]int64 {
	end = min(end, u.size)
	var out [][2]int64
	i := sort.Search(len(u.saved), func(i int) bool { return u.saved[i].end() > off })
	for ; off < end && i < len(u.saved); i++ {
		e := u.saved[i]
		if e.off >= end {
			break
		}
		if e.off > off {
			out = append(out, [2]int64{off, e.off})
		}
		off = max(off, e.end())
	}
	if off < end {
		out = append(out, [2]int64{off, end})
	}
	return out
}

// insert adds an extent that overlaps nothing saved, merging a zero run into a zero run just
// before it so an appending log does not pile up one extent per write.
func (u *undo) insert(e extent) {
	i := sort.Search(len(u.saved), func(i int) bool { return u.saved[i].off >= e.off })
	if i > 0 && e.data == nil {
		if prev := &u.saved[i-1]; prev.data == nil && prev.end() == e.off {
			prev.n += e.n
			return
		}
	}
	u.saved = append(u.saved, extent{})
	copy(u.saved[i+1:], u.saved[i:])
	u.saved[i] = e
}

// preserve saves the current content of [off, end) wherever it is still the durable content,
// before the caller overwrites or truncates it.
func (u *undo) preserve(off, end int64) error {
	for _, g := range u.gaps(off, end) {
		buf := make([]byte, g[1]-g[0])
		n, err := unix.Pread(u.fd, buf, g[0])
		if err != nil {
			return err
		}
		// Bytes not there to read were cut off by a truncate that saved them already; a
		// shorter read than that would be a bug, and zeroes are the least harmful guess.
		clear(buf[n:])
		if allZero(buf) {
			buf = nil
		}
		u.insert(extent{off: g[0], n: g[1] - g[0], data: buf})
	}
	return nil
}

// resized reports whether a revert changes the file although nothing written is lost, given its
// current size: a truncate or fallocate is undone.
func (u *undo) resized(cur int64) bool {
	return u.written.total() == 0 && (cur != u.size || len(u.saved) > 0)
}

// revert writes the saved bytes back and cuts the file to its durable size.
func (u *undo) revert() error {
	zeroes := make([]byte, 64<<10)
	for _, e := range u.saved {
		if e.data != nil {
			if _, err := unix.Pwrite(u.fd, e.data, e.off); err != nil {
				return err
			}
			continue
		}
		for off := e.off; off < e.end(); off += int64(len(zeroes)) {
			if _, err := unix.Pwrite(u.fd, zeroes[:min(int64(len(zeroes)), e.end()-off)], off); err != nil {
				return err
			}
		}
	}
	return unix.Ftruncate(u.fd, u.size)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// spans is a set of byte ranges [off, end), sorted, with overlapping and adjacent ones merged.
type spans [][2]int64

// add returns s with [off, end) added.
func (s spans) add(off, end int64) spans {
	if off >= end {
		return s
	}
	i := sort.Search(len(s), func(i int) bool { return s[i][1] >= off })
	j := i
	for ; j < len(s) && s[j][0] <= end; j++ {
		off, end = min(off, s[j][0]), max(end, s[j][1])
	}
	return slices.Replace(s, i, j, [2]int64{off, end})
}

// cut returns s without anything at or beyond size.
func (s spans) cut(size int64) spans {
	i := sort.Search(len(s), func(i int) bool { return s[i][1] > size })
	if i < len(s) && s[i][0] < size {
		s[i][1] = size
		i++
	}
	return s[:i]
}

func (s spans) total() int64 {
	var n int64
	for _, r := range s {
		n += r[1] - r[0]
	}
	return n
}
