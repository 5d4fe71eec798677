// Package wal is kvnode's write-ahead log: the durable record of Raft entries,
// hard state and the snapshot the log starts after.
//
// The log is one file of records. Each record is
//
//	length  uint32 little endian, of the body
//	crc     uint32 little endian, CRC-32C of the body
//	hcrc    uint32 little endian, CRC-32C of length and crc
//	body    type byte, payload, recordEnd
//
// The file is grown ahead of the records, in steps of preallocStep, so that
// a log write does not change the file's size: the fdatasync after it then
// has no metadata to commit, which here makes it about a third cheaper (as
// etcd preallocates its log segments). The space past the last record
// reads as zeroes, and the file's size is always a multiple of
// preallocStep (a log rewritten after a snapshot is padded too), so a
// file cut short is told from one a crash left.
//
// Every write to the log is fdatasynced before the next one (a hard state
// that need not be durable waits for the next write that must be), so a
// crash or power loss can only leave the last write unfinished: a prefix
// of it, then zeroes or the end of the file (a torn tail), which Open
// zeroes. Anything else that does not decode is damage to acknowledged
// state and Open refuses it. The two differ because a record's header has
// a checksum of its own (a damaged length cannot pass for a record running
// into the free space) and its body ends in a byte no single flipped bit
// makes zero (a body that stops early is cut short, not damaged).
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
	"slices"

	"go.etcd.io/raft/v3/raftpb"
)

const (
	recEntry     byte = 1
	recHardState byte = 2
	recSnapshot  byte = 3

	// recordEnd ends every record's body. A write cut short leaves a
	// zero there; a flipped bit cannot, as it has several bits set.
	recordEnd byte = 0xa5

	headerSize = 12
	// maxRecord bounds a record's length so a corrupt length field cannot
	// make us allocate gigabytes.
	maxRecord = 512 << 20

	fileName = "wal.log"

	// preallocStep is how far ahead of the records the file is grown.
	preallocStep = 16 << 20
)

// ErrCorrupt reports a damaged record: not the torn tail a crash leaves.
var ErrCorrupt = errors.New("wal: corrupt record in the middle of the log")

// DamageError reports a file of a member's data directory that does not
// hold what kvnode wrote to it. The member must not serve from it: what it
// acknowledged may be gone.
type DamageError struct {
	Path   string
	Offset int64 // where the damaged record starts (0: the file as a whole)
	Err    error
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("data dir damaged: %s, offset %d: %v; this member must be replaced: wipe its data dir and add it again", e.Path, e.Offset, e.Err)
}

func (e *DamageError) Unwrap() error { return e.Err }

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options tune a WAL.
type Options struct {
	// UnsafeNoSync is the lost-fsync bug switch: records are written to
	// the file but never fdatasynced, so they live in the page cache: a
	// crash of the process keeps them, a power loss loses them.
	UnsafeNoSync bool
	// UnsafeIgnoreSyncError is the ignore-fsync-error bug switch: a failed
	// fdatasync is logged and the records taken as durable all the same,
	// as PostgreSQL did until 2018 ("fsyncgate"). The kernel may have
	// dropped the pages it could not write, so a power loss loses them.
	UnsafeIgnoreSyncError bool
	// UnsafeNoDirSync is the skip-dir-fsync bug switch: the log's
	// directory is not fsynced after the log is created, or rewritten and
	// renamed into place. The records are fdatasynced, but on a file
	// system that keeps only what a directory fsync made durable (strict
	// POSIX) a power loss takes the new log's name away: the log vanishes,
	// or the old one comes back, without everything written since.
	UnsafeNoDirSync bool
	Logger          *slog.Logger
}

// WAL is an open write-ahead log.
type WAL struct {
	dir  string
	f    *os.File
	opts Options
	off  int64 // where the next record goes
	size int64 // the file's size: off plus the space preallocated past it

	// deferred is a hard state saved without sync, not yet written.
	deferred raftpb.HardState
	// datasync makes the log's writes durable: fdatasync (tests count it).
	datasync func(*os.File) error
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

// Open opens (creating if needed) the log in dir and replays it. A damaged
// log is a *DamageError.
func Open(dir string, opts Options) (*WAL, State, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := MkdirAll(dir); err != nil {
		return nil, State{}, err
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
	size := int64(len(data))
	if size%preallocStep != 0 {
		// A crash that lost the file's growth leaves its old size, a
		// multiple too. Cut records were acknowledged: the leader
		// counts on them, and Raft cannot mend a follower that lost
		// them (it panics when told they are committed).
		f.Close()
		return nil, State{}, &DamageError{Path: path, Offset: size,
			Err: fmt.Errorf("%w: the file is cut short: %d bytes, not a multiple of the %d it grows by", ErrCorrupt, size, preallocStep)}
	}
	st, good, err := Decode(data)
	if err != nil {
		f.Close()
		if de, ok := errors.AsType[*DamageError](err); ok {
			de.Path = path
		}
		return nil, State{}, err
	}
	if st.Truncated > 0 {
		// Zeroed, not cut off: the file keeps its size.
		opts.Logger.Warn("dropping torn wal tail", "path", path, "offset", good, "bytes", st.Truncated)
		if _, err := f.WriteAt(make([]byte, st.Truncated), good); err != nil {
			f.Close()
			return nil, State{}, fmt.Errorf("drop torn wal tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, State{}, fmt.Errorf("sync wal: %w", err)
		}
	}
	// The log may have just been created.
	if !opts.UnsafeNoDirSync {
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, State{}, err
		}
	}
	return &WAL{dir: dir, f: f, opts: opts, off: good, size: size, datasync: fdatasync}, st, nil
}

// Decode replays an encoded log. It returns the state and the length of the
// valid prefix; bytes after it are a torn tail (State.Truncated long) and
// zeroes. A damaged record is a *DamageError wrapping ErrCorrupt.
func Decode(data []byte) (State, int64, error) {
	var st State
	off := 0
	for off < len(data) {
		rest := data[off:]
		body, err := record(rest)
		if errors.Is(err, errEnd) {
			break
		}
		if errors.Is(err, errTorn) {
			st.Truncated = tornLen(rest)
			break
		}
		if err == nil {
			err = st.apply(body[0], body[1:len(body)-1])
		}
		if err != nil {
			return st, int64(off), &DamageError{Offset: int64(off), Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
		}
		off += headerSize + len(body)
	}
	return st, int64(off), nil
}

var (
	errEnd  = errors.New("end of the log")
	errTorn = errors.New("torn write")
)

// record returns the body of the record rest starts with, errEnd if there
// is none (only zeroes follow), errTorn if it is what an unfinished write
// left (a prefix of it, then zeroes or the end of the file), or what is
// wrong with it.
func record(rest []byte) ([]byte, error) {
	if len(rest) < headerSize {
		return nil, errTorn // a header cut short by the end of the file
	}
	h := rest[:headerSize]
	if allZero(h) {
		if allZero(rest) {
			return nil, errEnd
		}
		return nil, errors.New("zeroes where a record should start")
	}
	if crc32.Checksum(h[:8], crcTable) != binary.LittleEndian.Uint32(h[8:]) {
		if allZero(rest[headerSize:]) {
			return nil, errTorn // the write stopped inside the header
		}
		return nil, errors.New("record header checksum mismatch")
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	if n < 2 || n > maxRecord {
		return nil, fmt.Errorf("record length %d", n)
	}
	if int64(n) > int64(len(rest)-headerSize) {
		return nil, errTorn // a write cut short, then the file
	}
	body := rest[headerSize : headerSize+n]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(h[4:8]) {
		if body[n-1] == 0 && allZero(rest[headerSize+n:]) {
			return nil, errTorn // the write stopped inside the body
		}
		return nil, errors.New("record checksum mismatch")
	}
	if body[n-1] != recordEnd {
		return nil, errors.New("record end marker missing")
	}
	return body, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
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
	buf = append(buf, make([]byte, headerSize+n+2)...)
	rec := buf[start:]
	body := rec[headerSize:]
	body[0] = typ
	if _, err := m.MarshalTo(body[1 : 1+n]); err != nil {
		return buf[:start], fmt.Errorf("encode record: %w", err)
	}
	body[n+1] = recordEnd
	binary.LittleEndian.PutUint32(rec[0:4], uint32(len(body)))
	binary.LittleEndian.PutUint32(rec[4:8], crc32.Checksum(body, crcTable))
	binary.LittleEndian.PutUint32(rec[8:12], crc32.Checksum(rec[:8], crcTable))
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

// Save appends entries then hard state and, when sync is set, fdatasyncs
// before returning: Raft must not send messages about state that is not
// durable. Without sync (Raft's MustSync: only the commit index moved,
// which need not be durable) the hard state waits for the next synced
// Save, so that no write is ever left unsynced behind another: a power
// loss could keep the later one and lose the earlier, leaving a hole in
// the log.
func (w *WAL) Save(hs raftpb.HardState, ents []raftpb.Entry, sync bool) error {
	if !sync && len(ents) == 0 {
		if !isEmptyHardState(hs) {
			w.deferred = hs
		}
		return nil
	}
	if isEmptyHardState(hs) {
		hs = w.deferred
	}
	w.deferred = raftpb.HardState{}
	if isEmptyHardState(hs) && len(ents) == 0 {
		return nil
	}
	buf, err := Encode(nil, hs, ents)
	if err != nil {
		return err
	}
	if err := w.write(buf); err != nil {
		return err
	}
	if sync && !w.opts.UnsafeNoSync {
		if err := w.datasync(w.f); err != nil {
			if !w.opts.UnsafeIgnoreSyncError {
				return fmt.Errorf("sync wal: %w", err)
			}
			w.opts.Logger.Warn("wal sync failed; carrying on (ignore-fsync-error bug)", "err", err)
		}
	}
	return nil
}

// write puts records after the last ones, growing the file first if they
// would not fit in it.
func (w *WAL) write(buf []byte) error {
	if end := w.off + int64(len(buf)); end > w.size {
		size := grown(end)
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

// grown is the file size that holds n bytes of records and some space.
func grown(n int64) int64 { return (n/preallocStep + 1) * preallocStep }

// Rewrite replaces the log with one that starts after snapshot snap and holds
// hs and ents, the entries Raft still keeps. The old log stays in place until
// the new one is durable, so a crash at any moment leaves one complete log.
func (w *WAL) Rewrite(snap raftpb.SnapshotMetadata, hs raftpb.HardState, ents []raftpb.Entry) error {
	buf, err := appendRecord(nil, recSnapshot, &raftpb.SnapshotMetadata{Index: snap.Index, Term: snap.Term})
	if err != nil {
		return err
	}
	if buf, err = Encode(buf, hs, ents); err != nil {
		return err
	}
	path := filepath.Join(w.dir, fileName)
	size := grown(int64(len(buf)))
	if err := replaceFile(path, size, !w.opts.UnsafeNoDirSync, buf); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("reopen wal: %w", err)
	}
	w.f.Close()
	w.f = f
	w.off, w.size = int64(len(buf)), size
	w.deferred = raftpb.HardState{} // hs is the newest
	return nil
}

// Close writes a deferred hard state, syncs and closes the log.
func (w *WAL) Close() error {
	if err := w.Save(raftpb.HardState{}, nil, true); err != nil {
		w.f.Close()
		return err
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

// writeFileSync writes the concatenated parts to path, grows the file to
// size if it is larger, and fsyncs it.
func writeFileSync(path string, size int64, parts ...[]byte) error {
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
	if written := fileSize(parts); size > written {
		if err := preallocate(f, written, size); err != nil {
			f.Close()
			return fmt.Errorf("grow %s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

func fileSize(parts [][]byte) int64 {
	var n int64
	for _, p := range parts {
		n += int64(len(p))
	}
	return n
}

// WriteFileSync writes the concatenated parts to path durably via a
// temporary file and rename: a crash leaves the old file or the new one,
// whole. The rename is durable once the directory is fsynced.
func WriteFileSync(path string, parts ...[]byte) error { return replaceFile(path, 0, true, parts...) }

// replaceFile is WriteFileSync, the file grown to size; the rename is made
// durable only with syncParent.
func replaceFile(path string, size int64, syncParent bool, parts ...[]byte) error {
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, size, parts...); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if !syncParent {
		return nil
	}
	return syncDir(filepath.Dir(path))
}

// MkdirAll creates dir and any missing parents, as os.MkdirAll does, and
// makes each new directory durable: on a strict POSIX file system a new
// directory survives a power loss only once its parent is fsynced.
func MkdirAll(dir string) error {
	created, err := mkdirAll(dir)
	if err != nil {
		return err
	}
	for _, d := range created {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// mkdirAll creates dir and its missing parents and returns the directories
// it created, outermost first.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		_, err := os.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	slices.Reverse(missing)
	return missing, nil
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
