// Package wal is kvnode's write-ahead log: the durable record of Raft entries,
// hard state and the snapshot the log starts after.
//
// The log is one file of records. Each record is
//
//	length  uint32 little endian (of type+payload)
//	crc     uint32 little endian, CRC-32C of type+payload
//	type    byte
//	payload
//
// The file is grown ahead of the records, in steps of preallocStep, so that
// a log write does not change the file's size: the fdatasync after it then
// has no metadata to commit, which here makes it about a third cheaper (as
// etcd preallocates its log segments). The space past the last record
// reads as zeroes.
//
// A crash can leave a partly written record at the end of the log (a torn
// tail), followed by nothing or by zeroes; Open truncates it. A bad record
// followed by more data is corruption of acknowledged state and Open
// refuses to continue.
package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

const (
	recEntry     byte = 1
	recHardState byte = 2
	recSnapshot  byte = 3

	headerSize = 9
	// maxRecord bounds a record's length so a corrupt length field cannot
	// make us allocate gigabytes.
	maxRecord = 512 << 20

	fileName = "wal.log"

	// preallocStep is how far ahead of the records the file is grown.
	preallocStep = 16 << 20
)

// ErrCorrupt reports damage in the middle of the log.
var ErrCorrupt = errors.New("wal: corrupt record in the middle of the log")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options tune a WAL.
type Options struct {
	// UnsafeNoSync is the lost-fsync bug switch: records are kept in a
	// process buffer and written out only now and then, so a SIGKILL loses
	// acknowledged state.
	UnsafeNoSync bool
	Logger       *slog.Logger
}

// WAL is an open write-ahead log.
type WAL struct {
	dir  string
	f    *os.File
	opts Options
	off  int64 // where the next record goes
	size int64 // the file's size: off plus the space preallocated past it

	pending      []byte // lost-fsync only
	pendingSince time.Time
}

// State is what Open recovered from the log.
type State struct {
	Snapshot  raftpb.SnapshotMetadata // the snapshot the log starts after; zero if none
	HardState raftpb.HardState
	Entries   []raftpb.Entry
	// Truncated is the number of bytes of a torn tail dropped, not
	// counting zeroes after it.
	Truncated int64
}

// Exists reports whether dir holds a log.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, fileName))
	return err == nil
}

// Open opens (creating if needed) the log in dir and replays it.
func Open(dir string, opts Options) (*WAL, State, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, State{}, fmt.Errorf("create wal dir: %w", err)
	}
	path := filepath.Join(dir, fileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, State{}, fmt.Errorf("open wal: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, State{}, fmt.Errorf("read wal: %w", err)
	}
	st, good, err := Decode(data)
	if err != nil {
		f.Close()
		return nil, State{}, fmt.Errorf("replay %s: %w", path, err)
	}
	size := int64(len(data))
	if st.Truncated > 0 {
		opts.Logger.Warn("truncating torn wal tail", "path", path, "bytes", st.Truncated)
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, State{}, fmt.Errorf("truncate torn wal tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, State{}, fmt.Errorf("sync wal: %w", err)
		}
		size = good
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, State{}, err
	}
	return &WAL{dir: dir, f: f, opts: opts, off: good, size: size}, st, nil
}

// Decode replays an encoded log. It returns the state and the length of the
// valid prefix; bytes after it are a torn tail (State.Truncated long) and
// zeroes. Damage followed by valid-looking data is reported as ErrCorrupt.
func Decode(data []byte) (State, int64, error) {
	var st State
	off := 0
	for off < len(data) {
		rest := data[off:]
		if len(rest) < headerSize {
			st.Truncated = tornLen(rest) // a header cut short at the end
			return st, int64(off), nil
		}
		n := binary.LittleEndian.Uint32(rest[0:4])
		sum := binary.LittleEndian.Uint32(rest[4:8])
		if n == 0 || n > maxRecord {
			return st, int64(off), tornOrCorrupt(rest, off)
		}
		if int(n) > len(rest)-8 {
			// The record runs past the end of the file: a write cut short.
			st.Truncated = tornLen(rest)
			return st, int64(off), nil
		}
		body := rest[8 : 8+n]
		if crc32.Checksum(body, crcTable) != sum {
			// Only zeroes after it: the last record is torn.
			if err := tornOrCorrupt(rest[8+n:], off); err != nil {
				return st, int64(off), err
			}
			st.Truncated = tornLen(rest[:8+n])
			return st, int64(off), nil
		}
		if err := st.apply(body[0], body[1:]); err != nil {
			return st, int64(off), fmt.Errorf("record at offset %d: %w", off, err)
		}
		off += 8 + int(n)
	}
	return st, int64(off), nil
}

// tornOrCorrupt decides what a bad record at off means from what follows it:
// only zeroes is an unfinished write; anything else is corruption.
func tornOrCorrupt(after []byte, off int) error {
	for _, b := range after {
		if b != 0 {
			return fmt.Errorf("%w: at offset %d", ErrCorrupt, off)
		}
	}
	return nil
}

// tornLen is the length of a torn write, b, without the zeroes of free
// space that may follow it.
func tornLen(b []byte) int64 { return int64(len(bytes.TrimRight(b, "\x00"))) }

func (st *State) apply(typ byte, payload []byte) error {
	switch typ {
	case recEntry:
		var e raftpb.Entry
		if err := e.Unmarshal(payload); err != nil {
			return fmt.Errorf("decode entry: %w", err)
		}
		if e.Index <= st.Snapshot.Index {
			return nil
		}
		// A later append at index i replaces everything from i on, as
		// Raft overwrote an uncommitted suffix.
		if n := len(st.Entries); n > 0 {
			first := st.Entries[0].Index
			if e.Index < first {
				st.Entries = st.Entries[:0]
			} else if e.Index <= st.Entries[n-1].Index {
				st.Entries = st.Entries[:e.Index-first]
			} else if e.Index != st.Entries[n-1].Index+1 {
				return fmt.Errorf("entry %d does not follow %d", e.Index, st.Entries[n-1].Index)
			}
		}
		st.Entries = append(st.Entries, e)
	case recHardState:
		var hs raftpb.HardState
		if err := hs.Unmarshal(payload); err != nil {
			return fmt.Errorf("decode hard state: %w", err)
		}
		st.HardState = hs
	case recSnapshot:
		var m raftpb.SnapshotMetadata
		if err := m.Unmarshal(payload); err != nil {
			return fmt.Errorf("decode snapshot marker: %w", err)
		}
		st.Snapshot = m
		kept := st.Entries[:0]
		for _, e := range st.Entries {
			if e.Index > m.Index {
				kept = append(kept, e)
			}
		}
		st.Entries = kept
	default:
		return fmt.Errorf("unknown record type %d", typ)
	}
	return nil
}

type marshaler interface {
	Size() int
	MarshalTo([]byte) (int, error)
}

func appendRecord(buf []byte, typ byte, m marshaler) ([]byte, error) {
	n := m.Size()
	start := len(buf)
	buf = append(buf, make([]byte, headerSize+n)...)
	rec := buf[start:]
	binary.LittleEndian.PutUint32(rec[0:4], uint32(n+1))
	rec[8] = typ
	if _, err := m.MarshalTo(rec[9:]); err != nil {
		return buf[:start], fmt.Errorf("encode record: %w", err)
	}
	binary.LittleEndian.PutUint32(rec[4:8], crc32.Checksum(rec[8:], crcTable))
	return buf, nil
}

// Encode builds the records for hs (if not empty) and ents.
func Encode(buf []byte, hs raftpb.HardState, ents []raftpb.Entry) ([]byte, error) {
	var err error
	for i := range ents {
		if buf, err = appendRecord(buf, recEntry, &ents[i]); err != nil {
			return buf, err
		}
	}
	if !isEmptyHardState(hs) {
		if buf, err = appendRecord(buf, recHardState, &hs); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

func isEmptyHardState(hs raftpb.HardState) bool {
	return hs.Term == 0 && hs.Vote == 0 && hs.Commit == 0
}

// Save appends entries then hard state and, when sync is set, fsyncs before
// returning: Raft must not send messages about state that is not durable.
func (w *WAL) Save(hs raftpb.HardState, ents []raftpb.Entry, sync bool) error {
	if isEmptyHardState(hs) && len(ents) == 0 {
		return nil
	}
	if w.opts.UnsafeNoSync {
		if len(w.pending) == 0 {
			w.pendingSince = time.Now()
		}
		var err error
		if w.pending, err = Encode(w.pending, hs, ents); err != nil {
			return err
		}
		return w.MaybeFlush()
	}
	buf, err := Encode(nil, hs, ents)
	if err != nil {
		return err
	}
	if err := w.write(buf); err != nil {
		return err
	}
	if sync {
		if err := fdatasync(w.f); err != nil {
			return fmt.Errorf("sync wal: %w", err)
		}
	}
	return nil
}

// write puts records after the last ones, growing the file first if they
// would not fit in it.
func (w *WAL) write(buf []byte) error {
	if end := w.off + int64(len(buf)); end > w.size {
		size := (end/preallocStep + 1) * preallocStep
		if err := preallocate(w.f, w.size, size); err != nil {
			return fmt.Errorf("grow wal: %w", err)
		}
		w.size = size
	}
	if _, err := w.f.WriteAt(buf, w.off); err != nil {
		return fmt.Errorf("write wal: %w", err)
	}
	w.off += int64(len(buf))
	return nil
}

// lostWindow is how long the lost-fsync bug keeps records only in memory.
const lostWindow = time.Second

// MaybeFlush writes out records the lost-fsync bug has held for longer than
// lostWindow; call it regularly. Without the bug it does nothing.
func (w *WAL) MaybeFlush() error {
	if !w.opts.UnsafeNoSync || len(w.pending) == 0 {
		return nil
	}
	if len(w.pending) < 4<<20 && time.Since(w.pendingSince) < lostWindow {
		return nil
	}
	return w.flushPending()
}

func (w *WAL) flushPending() error {
	if len(w.pending) == 0 {
		return nil
	}
	err := w.write(w.pending)
	w.pending = w.pending[:0]
	return err
}

// Rewrite replaces the log with one that starts after snapshot snap and holds
// hs and ents, the entries Raft still keeps. The old log stays in place until
// the new one is durable, so a crash at any moment leaves one complete log.
func (w *WAL) Rewrite(snap raftpb.SnapshotMetadata, hs raftpb.HardState, ents []raftpb.Entry) error {
	if w.opts.UnsafeNoSync {
		if err := w.flushPending(); err != nil {
			return err
		}
	}
	buf, err := appendRecord(nil, recSnapshot, &raftpb.SnapshotMetadata{Index: snap.Index, Term: snap.Term})
	if err != nil {
		return err
	}
	if buf, err = Encode(buf, hs, ents); err != nil {
		return err
	}
	tmp := filepath.Join(w.dir, fileName+".tmp")
	if err := writeFileSync(tmp, buf); err != nil {
		return err
	}
	path := filepath.Join(w.dir, fileName)
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace wal: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("reopen wal: %w", err)
	}
	w.f.Close()
	w.f = f
	w.off, w.size = int64(len(buf)), int64(len(buf))
	return nil
}

// Close flushes (even in lost-fsync mode: a clean stop is not a crash) and
// closes the log.
func (w *WAL) Close() error {
	if w.opts.UnsafeNoSync {
		if err := w.flushPending(); err != nil {
			return err
		}
	}
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		return fmt.Errorf("sync wal: %w", err)
	}
	return w.f.Close()
}

// syncEvery bounds how much of a large file is written between fsyncs. A
// snapshot is tens of megabytes; flushed by one fsync at the end, it holds
// the disk long enough to stall the log's own fsyncs, which every write
// waits for.
const syncEvery = 4 << 20

func writeFileSync(path string, parts ...[]byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	unsynced := 0
	for _, p := range parts {
		for len(p) > 0 {
			n := min(len(p), syncEvery-unsynced)
			if _, err := f.Write(p[:n]); err != nil {
				f.Close()
				return fmt.Errorf("write %s: %w", path, err)
			}
			p = p[n:]
			if unsynced += n; unsynced == syncEvery {
				if err := f.Sync(); err != nil {
					f.Close()
					return fmt.Errorf("sync %s: %w", path, err)
				}
				unsynced = 0
			}
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// WriteFileSync writes the concatenated parts to path durably via a
// temporary file and rename.
func WriteFileSync(path string, parts ...[]byte) error {
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, parts...); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
