package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ents(from, to, term uint64) []raftpb.Entry {
	var out []raftpb.Entry
	for i := from; i <= to; i++ {
		out = append(out, raftpb.Entry{Index: i, Term: term, Data: []byte{byte(i)}})
	}
	return out
}

func TestSaveAndReplay(t *testing.T) {
	dir := t.TempDir()
	w, st := openLog(t, dir, false)
	if len(st.Entries) != 0 {
		t.Fatalf("new log has entries: %v", st.Entries)
	}
	must(t, w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: 2}, ents(1, 5, 1), true))
	// Raft overwrites an uncommitted suffix in a new term.
	must(t, w.Save(raftpb.HardState{Term: 2, Vote: 2, Commit: 4}, ents(4, 6, 2), true))
	must(t, w.Close())
	if fi, err := os.Stat(filepath.Join(dir, fileName)); err != nil || fi.Size() < preallocStep {
		t.Errorf("log file not preallocated: %v, %v", fi, err)
	}

	_, st = openLog(t, dir, false)
	if st.Truncated != 0 {
		t.Errorf("preallocated space taken for a torn tail: %d bytes dropped", st.Truncated)
	}
	if st.HardState.Term != 2 || st.HardState.Commit != 4 {
		t.Errorf("hard state = %+v", st.HardState)
	}
	if len(st.Entries) != 6 || st.Entries[3].Term != 2 || st.Entries[2].Term != 1 || st.Entries[5].Index != 6 {
		t.Errorf("entries = %+v", st.Entries)
	}
}

func TestRewrite(t *testing.T) {
	dir := t.TempDir()
	w, _ := openLog(t, dir, false)
	must(t, w.Save(raftpb.HardState{Term: 1, Commit: 10}, ents(1, 10, 1), true))
	must(t, w.Rewrite(raftpb.SnapshotMetadata{Index: 8, Term: 1}, raftpb.HardState{Term: 1, Commit: 10}, ents(9, 10, 1)))
	if fi, err := os.Stat(filepath.Join(dir, fileName)); err != nil || fi.Size()%preallocStep != 0 {
		t.Errorf("rewritten log not grown to a step: %v, %v", fi, err)
	}
	must(t, w.Save(raftpb.HardState{Term: 1, Commit: 11}, ents(11, 11, 1), true))
	must(t, w.Close())
	_, st := openLog(t, dir, false)
	if st.Snapshot.Index != 8 || len(st.Entries) != 3 || st.Entries[0].Index != 9 || st.HardState.Commit != 11 {
		t.Errorf("after rewrite: snap %+v entries %v hs %+v", st.Snapshot, st.Entries, st.HardState)
	}
}

// saves is a log of several Saves, the last one of two records, and
// where that last Save starts.
func saves(t *testing.T) (log []byte, lastSave int) {
	t.Helper()
	log, err := Encode(nil, raftpb.HardState{Term: 1, Commit: 2}, ents(1, 3, 1))
	if err != nil {
		t.Fatal(err)
	}
	lastSave = len(log)
	if log, err = Encode(log, raftpb.HardState{Term: 1, Commit: 4}, ents(4, 4, 1)); err != nil {
		t.Fatal(err)
	}
	return log, lastSave
}

// A crash or power loss leaves a prefix of the last write, then the end of
// the file or the zeroes it was written over: whatever the prefix, Open
// drops it, keeps every record before it, and the log takes writes again.
func TestTornTail(t *testing.T) {
	full, lastSave := saves(t)
	entry4, err := Encode(nil, raftpb.HardState{}, ents(4, 4, 1))
	if err != nil {
		t.Fatal(err)
	}
	for cut := lastSave; cut < len(full); cut++ {
		t.Run(fmt.Sprintf("cut at %d", cut), func(t *testing.T) {
			dir := t.TempDir()
			writeLog(t, dir, full[:cut])
			w, st := openLog(t, dir, false)
			defer w.Close()
			// The last Save is entry 4, then a hard state.
			kept, torn := 3, full[lastSave:cut]
			if cut >= lastSave+len(entry4) {
				kept, torn = 4, full[lastSave+len(entry4):cut]
			}
			torn = bytes.TrimRight(torn, "\x00") // zeroes of its own read as free space
			if len(st.Entries) != kept || st.HardState.Commit != 2 || st.Truncated != int64(len(torn)) {
				t.Errorf("%d entries, hard state %+v, %d bytes dropped; want %d, commit 2, %d", len(st.Entries), st.HardState, st.Truncated, kept, len(torn))
			}
			// A record shorter than the torn one must not leave
			// its remains behind it.
			must(t, w.Save(raftpb.HardState{Term: 5, Commit: 2}, nil, true))
			must(t, w.Close())
			_, st, err = Open(dir, Options{Logger: quiet})
			if err != nil || st.HardState.Term != 5 || len(st.Entries) != kept || st.Truncated != 0 {
				t.Fatalf("reopen after repair: %+v, %d entries, %d bytes dropped, %v", st.HardState, len(st.Entries), st.Truncated, err)
			}
		})
	}
}

// A power loss while the log grew leaves the old size: the last write runs
// past the end of the file. Open drops it.
func TestTornTailAtTheEndOfTheFile(t *testing.T) {
	head, err := Encode(nil, raftpb.HardState{Term: 1, Commit: 2}, ents(1, 3, 1))
	if err != nil {
		t.Fatal(err)
	}
	big, err := Encode(head, raftpb.HardState{}, []raftpb.Entry{{Index: 4, Term: 1, Data: make([]byte, preallocStep)}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeLog(t, dir, big[:preallocStep])
	w, st := openLog(t, dir, false)
	defer w.Close()
	if len(st.Entries) != 3 || st.Truncated == 0 {
		t.Errorf("%d entries, %d bytes dropped; want 3 and the torn one dropped", len(st.Entries), st.Truncated)
	}
}

// A log cut anywhere but at the end of a step of its growth was cut, not
// torn: what went was acknowledged. Open refuses it, even cut between two
// records.
func TestCutLogIsDamage(t *testing.T) {
	full, lastSave := saves(t)
	for _, cut := range []int{lastSave, lastSave + 5, len(full) - 1, len(full)} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fileName), full[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := Open(dir, Options{Logger: quiet})
		if de, ok := errors.AsType[*DamageError](err); !ok || de.Offset != int64(cut) {
			t.Errorf("log cut at %d: %v, want damage at %d", cut, err, cut)
		}
	}
}

// Every flipped bit of a log, in any record, the last one too, and in its
// header as in its body, is damage: Open refuses the log and names the
// record the bit is in.
func TestEveryFlipIsDamage(t *testing.T) {
	full, _ := saves(t)
	var starts []int // each record's offset
	for off := 0; off < len(full); {
		starts = append(starts, off)
		off += headerSize + int(binary.LittleEndian.Uint32(full[off:]))
	}
	for _, pad := range []int{0, 100} {
		for i := range len(full) * 8 {
			data := zeroes(full, pad)
			data[i/8] ^= 1 << (i % 8)
			_, _, err := Decode(data)
			de, ok := errors.AsType[*DamageError](err)
			if !ok || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("bit %d of byte %d flipped (%d zeroes after): %v, want damage", i%8, i/8, pad, err)
			}
			if want := starts[sort.SearchInts(starts, i/8+1)-1]; de.Offset != int64(want) {
				t.Fatalf("byte %d flipped: damage reported at %d, want the record at %d", i/8, de.Offset, want)
			}
		}
	}
}

func TestDamageOtherThanAFlip(t *testing.T) {
	full, lastSave := saves(t)
	tests := []struct {
		name string
		data []byte
	}{
		// Every write is synced before the next, so a power loss
		// cannot leave a hole before a record.
		{"hole before a record", append(append(append([]byte(nil), full[:lastSave]...), make([]byte, 20)...), full[lastSave:]...)},
		{"zeroed record in the middle", append(append(append([]byte(nil), full[:lastSave-1]...), 0), full[lastSave:]...)},
		{"record out of order", func() []byte {
			b, _ := Encode(nil, raftpb.HardState{}, ents(1, 2, 1))
			b, _ = Encode(b, raftpb.HardState{}, ents(5, 5, 1))
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeLog(t, dir, tt.data)
			_, _, err := Open(dir, Options{Logger: quiet})
			de, ok := errors.AsType[*DamageError](err)
			if !ok || de.Path != filepath.Join(dir, fileName) {
				t.Fatalf("open = %v, want damage to %s", err, filepath.Join(dir, fileName))
			}
		})
	}
}

// countSyncs makes w count its fdatasyncs.
func countSyncs(w *WAL) *int {
	n := new(int)
	sync := w.datasync
	w.datasync = func(f *os.File) error { *n++; return sync(f) }
	return n
}

// lost-fsync skips the log's fdatasync, and nothing else.
func TestUnsafeNoSyncSkipsDatasync(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		w, _, err := Open(t.TempDir(), Options{Logger: quiet, UnsafeNoSync: noSync})
		if err != nil {
			t.Fatal(err)
		}
		syncs := countSyncs(w)
		must(t, w.Save(raftpb.HardState{Term: 1, Commit: 1}, ents(1, 1, 1), true))
		must(t, w.Save(raftpb.HardState{Term: 1, Commit: 2}, ents(2, 3, 1), true))
		must(t, w.Save(raftpb.HardState{Term: 1, Commit: 3}, nil, false))
		must(t, w.Save(raftpb.HardState{Term: 2, Vote: 1, Commit: 3}, nil, true))
		want := 3
		if noSync {
			want = 0
		}
		if *syncs != want {
			t.Errorf("UnsafeNoSync %v: %d fdatasyncs for 3 synced saves, want %d", noSync, *syncs, want)
		}
		must(t, w.Close())
	}
}

// A failed fdatasync fails the save, so Raft never acts on the records;
// ignore-fsync-error takes it for a success.
func TestSyncErrorFailsTheSave(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		w, _, err := Open(t.TempDir(), Options{Logger: quiet, UnsafeIgnoreSyncError: ignore})
		if err != nil {
			t.Fatal(err)
		}
		w.datasync = func(*os.File) error { return syscall.EIO }
		err = w.Save(raftpb.HardState{Term: 1, Commit: 1}, ents(1, 1, 1), true)
		if ignore != (err == nil) || (err != nil && !errors.Is(err, syscall.EIO)) {
			t.Errorf("UnsafeIgnoreSyncError %v: Save = %v", ignore, err)
		}
	}
}

// Records written with lost-fsync are in the file at once, not in a buffer
// of the process: a crash of the process (no Close) keeps them.
func TestUnsafeNoSyncWritesTheFile(t *testing.T) {
	dir := t.TempDir()
	w, _ := openLog(t, dir, true)
	must(t, w.Save(raftpb.HardState{Term: 1, Commit: 1}, ents(1, 1, 1), true))
	must(t, w.Save(raftpb.HardState{Term: 1, Commit: 2}, ents(2, 2, 1), true))
	w.f.Close() // the process dies: no Close
	_, st := openLog(t, dir, false)
	if len(st.Entries) != 2 || st.HardState.Commit != 2 {
		t.Errorf("after a crash: %d entries, hard state %+v; want 2, commit 2", len(st.Entries), st.HardState)
	}
}

// A hard state saved without sync is written with the next synced save or
// at Close, never on its own.
func TestUnsyncedHardStateWaits(t *testing.T) {
	dir := t.TempDir()
	w, _ := openLog(t, dir, false)
	must(t, w.Save(raftpb.HardState{Term: 1, Commit: 1}, ents(1, 2, 1), true))
	off := w.off
	must(t, w.Save(raftpb.HardState{Term: 1, Commit: 2}, nil, false))
	if w.off != off {
		t.Fatalf("an unsynced hard state was written: the log grew from %d to %d bytes", off, w.off)
	}
	must(t, w.Save(raftpb.HardState{}, ents(3, 3, 1), true))
	must(t, w.Save(raftpb.HardState{Term: 1, Commit: 3}, nil, false))
	must(t, w.Close())
	_, st := openLog(t, dir, false)
	if len(st.Entries) != 3 || st.HardState.Commit != 3 {
		t.Errorf("%d entries, hard state %+v; want 3, commit 3", len(st.Entries), st.HardState)
	}
}

func TestMkdirAll(t *testing.T) {
	base := t.TempDir()
	tests := []struct {
		dir  string
		want []string // created, outermost first
	}{
		{"a/b/c", []string{"a", "a/b", "a/b/c"}},
		{"a/b/c", nil},
		{"a/b/d", []string{"a/b/d"}},
		{"a", nil},
	}
	for _, tt := range tests {
		got, err := mkdirAll(filepath.Join(base, tt.dir))
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, d := range tt.want {
			want = append(want, filepath.Join(base, d))
		}
		if !slices.Equal(got, want) {
			t.Errorf("mkdirAll(%s) created %v, want %v", tt.dir, got, want)
		}
		if fi, err := os.Stat(filepath.Join(base, tt.dir)); err != nil || !fi.IsDir() {
			t.Errorf("%s not created: %v", tt.dir, err)
		}
	}
	must(t, MkdirAll(filepath.Join(base, "x/y")))
	if _, err := os.Stat(filepath.Join(base, "x/y")); err != nil {
		t.Error(err)
	}
}

// openLog opens the log in dir, failing the test if it cannot.
func openLog(t *testing.T, dir string, noSync bool) (*WAL, State) {
	t.Helper()
	w, st, err := Open(dir, Options{Logger: quiet, UnsafeNoSync: noSync})
	if err != nil {
		t.Fatal(err)
	}
	return w, st
}

// writeLog writes data as the log in dir, followed by free space to the
// end of the step of growth it is in, as the log is on disk.
func writeLog(t *testing.T, dir string, data []byte) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, fileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if n := int64(len(data)); n%preallocStep != 0 {
		must(t, f.Truncate(grown(n)))
	}
}

// zeroes returns b followed by n zero bytes.
func zeroes(b []byte, n int) []byte {
	return append(append([]byte(nil), b...), make([]byte, n)...)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzDecode: the decoder never panics, and whatever prefix it accepts
// re-decodes to the same state.
func FuzzDecode(f *testing.F) {
	full, _ := Encode(nil, raftpb.HardState{Term: 1, Commit: 3}, ents(1, 3, 1))
	f.Add(full)
	f.Add(full[:len(full)/2])
	f.Add([]byte{})
	f.Add(zeroes(full, 30))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, good, err := Decode(data)
		if err != nil {
			return
		}
		if good+st.Truncated > int64(len(data)) {
			t.Fatalf("valid prefix %d and torn tail %d longer than input %d", good, st.Truncated, len(data))
		}
		st2, good2, err := Decode(data[:good])
		if err != nil || good2 != good || len(st2.Entries) != len(st.Entries) || st2.Truncated != 0 {
			t.Fatalf("prefix does not re-decode: %v, %d vs %d", err, good2, good)
		}
	})
}
