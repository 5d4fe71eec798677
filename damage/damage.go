// Package damage breaks a stopped member's files on purpose, as a failing
// disk would: a flipped bit, or a file cut short. A store must notice
// either and refuse to serve from it (a cut tail it may take for the torn
// write a crash leaves).
//
// Only the used part of a file is damaged: up to its last non-zero byte.
// Logs are grown ahead of their records with zeroes, and a flip or a cut
// there would test nothing.
package damage

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
)

// Done is what was damaged.
type Done struct {
	Path             string // relative to the directory given
	Offset           int64  // the byte flipped (a flip)
	Bit              int    // the bit of it flipped, 0 the lowest (a flip)
	OldSize, NewSize int64  // the file's size before and after: equal for a flip
}

func (d Done) String() string {
	if d.NewSize != d.OldSize {
		return fmt.Sprintf("cut %s from %d to %d bytes", d.Path, d.OldSize, d.NewSize)
	}
	return fmt.Sprintf("flipped bit %d of byte %d of %s", d.Bit, d.Offset, d.Path)
}

// cutWindow is how far back from the end of the used part a cut may go: a
// torn tail, or a little more.
const cutWindow = 32 << 10

// Flip flips one random bit in the used part of one random regular file
// under dir matching one of globs (filepath.Match patterns relative to
// dir, e.g. "member/wal/*.log"), and fsyncs the file.
func Flip(dir string, globs []string, r *rand.Rand) (Done, error) {
	c, err := pick(dir, globs, r)
	if err != nil {
		return Done{}, err
	}
	d := Done{Path: c.path, Offset: r.Int64N(c.used), Bit: r.IntN(8), OldSize: c.size, NewSize: c.size}
	f, err := os.OpenFile(filepath.Join(dir, c.path), os.O_RDWR, 0)
	if err != nil {
		return Done{}, fmt.Errorf("damage: %w", err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, d.Offset); err != nil {
		f.Close()
		return Done{}, fmt.Errorf("damage: read %s: %w", c.path, err)
	}
	b[0] ^= 1 << d.Bit
	if _, err := f.WriteAt(b, d.Offset); err != nil {
		f.Close()
		return Done{}, fmt.Errorf("damage: write %s: %w", c.path, err)
	}
	return d, syncClose(f)
}

// Truncate cuts the tail of one random regular file under dir matching
// one of globs: its new size is a random point in the last 32 KiB of its
// used part, so at least one byte of the used part goes. The file is
// fsynced.
func Truncate(dir string, globs []string, r *rand.Rand) (Done, error) {
	c, err := pick(dir, globs, r)
	if err != nil {
		return Done{}, err
	}
	from := max(0, c.used-cutWindow)
	d := Done{Path: c.path, OldSize: c.size, NewSize: from + r.Int64N(c.used-from)}
	f, err := os.OpenFile(filepath.Join(dir, c.path), os.O_RDWR, 0)
	if err != nil {
		return Done{}, fmt.Errorf("damage: %w", err)
	}
	if err := f.Truncate(d.NewSize); err != nil {
		f.Close()
		return Done{}, fmt.Errorf("damage: cut %s: %w", c.path, err)
	}
	return d, syncClose(f)
}

func syncClose(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("damage: sync %s: %w", f.Name(), err)
	}
	return f.Close()
}

// candidate is a file that can be damaged.
type candidate struct {
	path       string // relative to dir
	size, used int64
}

// pick chooses one of the regular files under dir that match globs and
// have a used part. The choice depends only on r and the files: they are
// considered in name order.
func pick(dir string, globs []string, r *rand.Rand) (candidate, error) {
	fsys := os.DirFS(dir)
	var names []string
	for _, g := range globs {
		m, err := fs.Glob(fsys, g)
		if err != nil {
			return candidate{}, fmt.Errorf("damage: pattern %q: %w", g, err)
		}
		names = append(names, m...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var cs []candidate
	for _, name := range names {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			return candidate{}, fmt.Errorf("damage: %w", err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		used, err := usedSize(filepath.Join(dir, name), fi.Size())
		if err != nil {
			return candidate{}, err
		}
		if used > 0 {
			cs = append(cs, candidate{path: name, size: fi.Size(), used: used})
		}
	}
	if len(cs) == 0 {
		return candidate{}, fmt.Errorf("damage: no regular file with a non-zero byte under %s matches %q", dir, globs)
	}
	return cs[r.IntN(len(cs))], nil
}

// usedSize is the length of the file at path up to its last non-zero byte,
// read backwards from its end.
func usedSize(path string, size int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("damage: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, fmt.Errorf("damage: read %s: %w", path, err)
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != 0 {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}

// Apply damages one file under dir matching globs the way how names: "flip"
// (Flip) or "cut" (Truncate), choosing with a source seeded by seed, and
// says what it did. It is the one entry point of the nemesis, wherever the
// member runs.
func Apply(dir, how string, globs []string, seed uint64) (string, error) {
	r := rand.New(rand.NewPCG(seed, seed))
	var done Done
	var err error
	switch how {
	case "flip":
		done, err = Flip(dir, globs, r)
	case "cut":
		done, err = Truncate(dir, globs, r)
	default:
		err = fmt.Errorf("damage %q: want flip or cut", how)
	}
	if err != nil {
		return "", err
	}
	return done.String(), nil
}
