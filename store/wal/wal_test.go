package wal

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
	w, st, err := Open(dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
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

	_, st, err = Open(dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
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
	w, _, err := Open(dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	must(t, w.Save(raftpb.HardState{Term: 1, Commit: 10}, ents(1, 10, 1), true))
	must(t, w.Rewrite(raftpb.SnapshotMetadata{Index: 8, Term: 1}, raftpb.HardState{Term: 1, Commit: 10}, ents(9, 10, 1)))
	must(t, w.Save(raftpb.HardState{Term: 1, Commit: 11}, ents(11, 11, 1), true))
	must(t, w.Close())
	_, st, err := Open(dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if st.Snapshot.Index != 8 || len(st.Entries) != 3 || st.Entries[0].Index != 9 || st.HardState.Commit != 11 {
		t.Errorf("after rewrite: snap %+v entries %v hs %+v", st.Snapshot, st.Entries, st.HardState)
	}
}

func TestTornTailAndCorruption(t *testing.T) {
	full, err := Encode(nil, raftpb.HardState{Term: 1, Commit: 3}, ents(1, 3, 1))
	if err != nil {
		t.Fatal(err)
	}
	oneRecord, _ := Encode(nil, raftpb.HardState{}, ents(1, 1, 1))
	tests := []struct {
		name     string
		data     []byte
		entries  int
		corrupt  bool
		truncate bool
	}{
		{"intact", full, 3, false, false},
		{"cut mid record", full[:len(full)-3], 3, false, true},
		{"cut mid header", full[:len(oneRecord)+4], 1, false, true},
		{"preallocated space", zeroes(full, 100), 3, false, false},
		{"cut mid record before preallocated space", zeroes(full[:len(full)-3], 100), 3, false, true},
		{"flipped byte in last record", flip(full, len(full)-1), 3, false, true},
		{"flipped byte in last record before preallocated space", zeroes(flip(full, len(full)-1), 100), 3, false, true},
		{"flipped byte in first record", flip(full, len(oneRecord)-1), 0, true, false},
		{"flipped byte in first record before preallocated space", zeroes(flip(full, len(oneRecord)-1), 100), 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, fileName), tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			w, st, err := Open(dir, Options{Logger: quiet})
			if tt.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("open = %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if len(st.Entries) != tt.entries {
				t.Errorf("entries = %d, want %d", len(st.Entries), tt.entries)
			}
			if (st.Truncated > 0) != tt.truncate {
				t.Errorf("truncated %d bytes, want truncation %v", st.Truncated, tt.truncate)
			}
			// After truncation, appending works and replays.
			must(t, w.Save(raftpb.HardState{Term: 5, Commit: 1}, nil, true))
			w.Close()
			_, st, err = Open(dir, Options{Logger: quiet})
			if err != nil || st.HardState.Term != 5 {
				t.Fatalf("reopen after repair: %+v, %v", st.HardState, err)
			}
		})
	}
}

func TestLostFsyncLosesBufferedRecords(t *testing.T) {
	dir := t.TempDir()
	w, _, err := Open(dir, Options{Logger: quiet, UnsafeNoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	must(t, w.Save(raftpb.HardState{Term: 1, Commit: 1}, ents(1, 1, 1), true))
	// Simulate SIGKILL: the process buffer is gone, no Close.
	w.f.Close()
	_, st, err := Open(dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Entries) != 0 {
		t.Errorf("lost-fsync bug kept %d entries across a crash", len(st.Entries))
	}
}

// zeroes returns b followed by n zero bytes.
func zeroes(b []byte, n int) []byte {
	return append(append([]byte(nil), b...), make([]byte, n)...)
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0xff
	return c
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
	f.Add(flip(full, 5))
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
