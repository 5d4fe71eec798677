package damage

import (
	"bytes"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tree writes files (relative path → content) under a new directory.
func tree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// logLike is n bytes of records (none zero) followed by pad zeroes, as a
// preallocated log.
func logLike(n, pad int) []byte {
	b := bytes.Repeat([]byte{0xa5}, n)
	return append(b, make([]byte, pad)...)
}

func read(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFlip(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
		globs []string
		want  []string // the files that may be picked
		used  int
	}{
		{"preallocated log", map[string][]byte{"member/wal/wal.log": logLike(100, 4000)}, []string{"member/wal/*.log"}, []string{"member/wal/wal.log"}, 100},
		{"one byte used", map[string][]byte{"f": logLike(1, 10)}, []string{"f"}, []string{"f"}, 1},
		{"zero inside the used part", map[string][]byte{"f": append(logLike(3, 2), 7, 0, 0)}, []string{"f"}, []string{"f"}, 6},
		{"only matching files", map[string][]byte{"a.log": logLike(50, 0), "b.bin": logLike(50, 0), "sub/c.log": logLike(50, 0)},
			[]string{"*.log"}, []string{"a.log"}, 50},
		{"empty and all-zero files skipped", map[string][]byte{"a": nil, "b": make([]byte, 100), "c": logLike(20, 20)},
			[]string{"*"}, []string{"c"}, 20},
		{"several globs", map[string][]byte{"x/1": logLike(30, 0), "y/2": logLike(30, 0), "z/3": logLike(30, 0)},
			[]string{"x/*", "y/*", "x/1"}, []string{"x/1", "y/2"}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			picked := map[string]bool{}
			for seed := range uint64(64) {
				dir := tree(t, tt.files)
				d, err := Flip(dir, tt.globs, rand.New(rand.NewPCG(seed, 1)))
				if err != nil {
					t.Fatal(err)
				}
				orig, ok := tt.files[d.Path]
				if !ok || !slices.Contains(tt.want, d.Path) {
					t.Fatalf("flipped %s, want one of %v", d.Path, tt.want)
				}
				picked[d.Path] = true
				got := read(t, dir, d.Path)
				if len(got) != len(orig) || d.OldSize != int64(len(orig)) || d.NewSize != d.OldSize {
					t.Fatalf("size %d → %d (Done says %d → %d), want %d unchanged", len(orig), len(got), d.OldSize, d.NewSize, len(orig))
				}
				if d.Offset < 0 || d.Offset >= int64(tt.used) {
					t.Fatalf("flipped byte %d, outside the used part [0, %d)", d.Offset, tt.used)
				}
				diff := 0
				for i := range got {
					diff += bits.OnesCount8(got[i] ^ orig[i])
				}
				if diff != 1 || got[d.Offset]^orig[d.Offset] != 1<<d.Bit {
					t.Fatalf("%d bits differ; Done says bit %d of byte %d", diff, d.Bit, d.Offset)
				}
				for name, data := range tt.files {
					if name != d.Path && !bytes.Equal(read(t, dir, name), data) {
						t.Fatalf("%s changed too", name)
					}
				}
			}
			if len(picked) != len(tt.want) {
				t.Errorf("over 64 seeds picked %v, want each of %v", picked, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		min, max int64 // the new size's bounds
	}{
		{"long preallocated log", logLike(100<<10, 8<<10), 100<<10 - cutWindow, 100<<10 - 1},
		{"short log", logLike(10, 1000), 0, 9},
		{"one byte", logLike(1, 0), 0, 0},
		{"exactly the window", logLike(cutWindow, 0), 0, cutWindow - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sizes := map[int64]bool{}
			for seed := range uint64(64) {
				dir := tree(t, map[string][]byte{"member/wal/wal.log": tt.data})
				d, err := Truncate(dir, []string{"member/wal/*"}, rand.New(rand.NewPCG(seed, 2)))
				if err != nil {
					t.Fatal(err)
				}
				got := read(t, dir, "member/wal/wal.log")
				if d.Path != "member/wal/wal.log" || d.OldSize != int64(len(tt.data)) || d.NewSize != int64(len(got)) {
					t.Fatalf("Done %+v; the file is now %d bytes, was %d", d, len(got), len(tt.data))
				}
				if d.NewSize < tt.min || d.NewSize > tt.max {
					t.Fatalf("cut to %d bytes, want %d to %d", d.NewSize, tt.min, tt.max)
				}
				if !bytes.Equal(got, tt.data[:d.NewSize]) {
					t.Fatal("what is left is not the file's start")
				}
				sizes[d.NewSize] = true
			}
			if want := min(tt.max-tt.min+1, 8); int64(len(sizes)) < want {
				t.Errorf("64 seeds cut to only %d sizes, want at least %d", len(sizes), want)
			}
		})
	}
}

func TestNothingToDamage(t *testing.T) {
	dir := tree(t, map[string][]byte{"member/wal/wal.log": make([]byte, 4096), "member/empty": nil, "other.log": logLike(10, 0)})
	if err := os.Symlink(filepath.Join(dir, "other.log"), filepath.Join(dir, "member/link")); err != nil {
		t.Fatal(err)
	}
	globs := []string{"member/*", "member/wal/*.log", "nothing/*"}
	for name, f := range map[string]func(string, []string, *rand.Rand) (Done, error){"Flip": Flip, "Truncate": Truncate} {
		d, err := f(dir, globs, rand.New(rand.NewPCG(1, 1)))
		if err == nil {
			t.Fatalf("%s damaged %v though no regular file with data matches", name, d)
		}
		if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "member/wal/*.log") {
			t.Errorf("%s: error %q names neither the directory nor the patterns", name, err)
		}
	}
	if _, err := Flip(dir, []string{"[bad"}, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("a malformed pattern was accepted")
	}
}

// The same source and the same files give the same damage.
func TestDeterministic(t *testing.T) {
	files := map[string][]byte{"a": logLike(5000, 100), "b": logLike(7000, 0), "c": logLike(3000, 50)}
	for name, f := range map[string]func(string, []string, *rand.Rand) (Done, error){"Flip": Flip, "Truncate": Truncate} {
		var first Done
		for i := range 3 {
			d, err := f(tree(t, files), []string{"*"}, rand.New(rand.NewPCG(42, 7)))
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 && d != first {
				t.Errorf("%s: %v, then %v from the same seed", name, first, d)
			}
			first = d
		}
	}
}

func TestString(t *testing.T) {
	for _, tt := range []struct {
		d    Done
		want string
	}{
		{Done{Path: "member/wal/wal.log", Offset: 18211, Bit: 3, OldSize: 40960, NewSize: 40960}, "flipped bit 3 of byte 18211 of member/wal/wal.log"},
		{Done{Path: "member/wal/wal.log", OldSize: 40960, NewSize: 38112}, "cut member/wal/wal.log from 40960 to 38112 bytes"},
	} {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestApply: the nemesis's names reach the right damage, and a seed repeats
// it.
func TestApply(t *testing.T) {
	for _, how := range []string{"flip", "cut"} {
		var said []string
		for range 2 {
			dir := tree(t, map[string][]byte{"member/wal/wal.log": logLike(40<<10, 4096)})
			s, err := Apply(dir, how, []string{"member/wal/*.log"}, 7)
			if err != nil {
				t.Fatal(err)
			}
			said = append(said, s)
		}
		if !strings.HasPrefix(said[0], map[string]string{"flip": "flipped", "cut": "cut"}[how]) || said[0] != said[1] {
			t.Errorf("%s: said %q", how, said)
		}
	}
	if _, err := Apply(t.TempDir(), "burn", []string{"*"}, 1); err == nil || !strings.Contains(err.Error(), "want flip or cut") {
		t.Errorf("an unknown damage: %v", err)
	}
}
