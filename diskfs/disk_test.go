package diskfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// harness drives the model directly, failing the test on any unexpected error. The model's
// clock is h.clock, which only tick moves.
type harness struct {
	t     *testing.T
	d     *disk
	clock time.Time
}

func newHarness(t *testing.T, mode Mode) *harness {
	t.Helper()
	d, err := newDisk(t.TempDir(), mode)
	if err != nil {
		t.Fatal(err)
	}
	d.wait = 50 * time.Millisecond
	t.Cleanup(d.close)
	h := &harness{t: t, d: d, clock: time.Unix(1e9, 0)}
	d.now = func() time.Time { return h.clock }
	return h
}

func (h *harness) tick(d time.Duration) { h.clock = h.clock.Add(d) }

// writeback runs the flusher now, writing back what has been dirty for expire.
func (h *harness) writeback(expire time.Duration) {
	h.d.expire = expire
	h.d.writeback(h.clock)
}

func (h *harness) ok(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

// with opens p, runs fn on the handle and closes it.
func (h *harness) with(p string, fn func(f *file)) {
	h.t.Helper()
	f, err := h.d.open(p, unix.O_RDWR)
	h.ok(err)
	defer f.close()
	fn(f)
}

func (h *harness) create(p, content string) {
	h.t.Helper()
	f, err := h.d.create(p, unix.O_RDWR, 0o644, sameOwner)
	h.ok(err)
	defer f.close()
	_, err = h.d.writeAt(f, []byte(content), 0)
	h.ok(err)
}

func (h *harness) write(p string, off int64, data string) {
	h.t.Helper()
	h.with(p, func(f *file) {
		_, err := h.d.writeAt(f, []byte(data), off)
		h.ok(err)
	})
}

func (h *harness) truncate(p string, size int64) {
	h.t.Helper()
	h.ok(h.d.truncatePath(p, size))
}

func (h *harness) fsync(p string) {
	h.t.Helper()
	h.with(p, func(f *file) { h.ok(h.d.fsync(f)) })
}

func (h *harness) loss() Loss {
	h.t.Helper()
	l, err := h.d.powerLoss()
	h.ok(err)
	return l
}

// tree is the backing directory as path → content (see readTree). The staging directory must be
// empty after a loss.
func (h *harness) tree() map[string]string {
	h.t.Helper()
	out, err := readTree(h.d.root)
	h.ok(err)
	return out
}

// readTree lists the tree under root as path → content: "dir/" for directories, "-> target" for
// symlinks; the staging directory is left out.
func readTree(root string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case rel == "." || rel == stageName:
		case fi.IsDir():
			out[rel] = "dir/"
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			out[rel] = "-> " + target
			return err
		default:
			b, err := os.ReadFile(path)
			out[rel] = string(b)
			return err
		}
		return nil
	})
	return out, err
}

func TestModel(t *testing.T) {
	cases := []struct {
		name string
		mode Mode
		base map[string]string // made durable before the steps ("dir/" makes a directory)
		run  func(h *harness)
		want map[string]string // the backing directory after the loss
	}{
		{
			name: "write fsync write",
			base: map[string]string{"a": "hello world"},
			run: func(h *harness) {
				h.write("a", 0, "HELLO")
				h.fsync("a")
				h.write("a", 6, "WORLD")
			},
			want: map[string]string{"a": "HELLO world"},
		},
		{
			name: "write past the end",
			base: map[string]string{"a": "abc"},
			run:  func(h *harness) { h.write("a", 2, "CDEFG") },
			want: map[string]string{"a": "abc"},
		},
		{
			name: "overwritten twice keeps the first old value",
			base: map[string]string{"a": "aaaaaa"},
			run: func(h *harness) {
				h.write("a", 0, "bbb")
				h.write("a", 1, "ccccc")
			},
			want: map[string]string{"a": "aaaaaa"},
		},
		{
			name: "truncate",
			base: map[string]string{"a": "abcdef"},
			run: func(h *harness) {
				h.truncate("a", 2)
				h.truncate("a", 9)
				h.write("a", 7, "zz")
			},
			want: map[string]string{"a": "abcdef"},
		},
		{
			name: "truncate to zero then fsync",
			base: map[string]string{"a": "abcdef"},
			run: func(h *harness) {
				h.truncate("a", 0)
				h.write("a", 0, "x")
				h.fsync("a")
				h.write("a", 1, "yz")
			},
			want: map[string]string{"a": "x"},
		},
		{
			name: "zeroes",
			base: map[string]string{"a": "\x00\x00\x00\x00\x00\x00\x00\x00"},
			run: func(h *harness) {
				h.write("a", 1, "xy")
				h.write("a", 3, "zw")
			},
			want: map[string]string{"a": "\x00\x00\x00\x00\x00\x00\x00\x00"},
		},
		{
			name: "strict: fsynced file in an unsynced directory vanishes",
			mode: Strict,
			base: map[string]string{"d": "dir/"},
			run: func(h *harness) {
				h.create("d/a", "data")
				h.fsync("d/a")
			},
			want: map[string]string{"d": "dir/"},
		},
		{
			name: "ext4: fsync of the file commits its name",
			mode: Ext4,
			base: map[string]string{"d": "dir/"},
			run: func(h *harness) {
				h.create("d/a", "data")
				h.fsync("d/a")
			},
			want: map[string]string{"d": "dir/", "d/a": "data"},
		},
		{
			name: "strict: fsync of file and directory keeps both",
			mode: Strict,
			base: map[string]string{"d": "dir/"},
			run: func(h *harness) {
				h.create("d/a", "data")
				h.fsync("d/a")
				h.ok(h.d.fsyncDir("d"))
			},
			want: map[string]string{"d": "dir/", "d/a": "data"},
		},
		{
			name: "strict: directory fsync without file fsync keeps an empty file",
			mode: Strict,
			run: func(h *harness) {
				h.create("a", "data")
				h.ok(h.d.fsyncDir(""))
			},
			want: map[string]string{"a": ""},
		},
		{
			name: "strict: fsync of another directory commits nothing",
			mode: Strict,
			base: map[string]string{"d": "dir/", "e": "dir/"},
			run: func(h *harness) {
				h.create("d/a", "data")
				h.ok(h.d.fsyncDir("e"))
			},
			want: map[string]string{"d": "dir/", "e": "dir/"},
		},
		{
			name: "strict: rename without directory fsync reverts",
			mode: Strict,
			base: map[string]string{"a": "A"},
			run:  func(h *harness) { h.ok(h.d.rename("a", "b", 0)) },
			want: map[string]string{"a": "A"},
		},
		{
			name: "strict: rename over a target brings the target back",
			mode: Strict,
			base: map[string]string{"a": "A", "b": "old b"},
			run: func(h *harness) {
				h.write("b", 0, "NEW B, never synced")
				h.ok(h.d.rename("a", "b", 0))
			},
			want: map[string]string{"a": "A", "b": "old b"},
		},
		{
			name: "strict: rename with directory fsync stays",
			mode: Strict,
			base: map[string]string{"a": "A", "b": "old b"},
			run: func(h *harness) {
				h.ok(h.d.rename("a", "b", 0))
				h.ok(h.d.fsyncDir(""))
			},
			want: map[string]string{"b": "A"},
		},
		{
			name: "strict: rename between directories, target directory synced",
			mode: Strict,
			base: map[string]string{"x": "dir/", "y": "dir/", "x/a": "A"},
			run: func(h *harness) {
				h.ok(h.d.rename("x/a", "y/a", 0))
				h.ok(h.d.fsyncDir("y"))
			},
			want: map[string]string{"x": "dir/", "y": "dir/", "y/a": "A"},
		},
		{
			name: "strict: renamed directory comes back",
			mode: Strict,
			base: map[string]string{"x": "dir/", "x/a": "A", "y": "dir/"},
			run: func(h *harness) {
				h.ok(h.d.rename("x", "z", 0))
				h.write("z/a", 0, "B")
				h.ok(h.d.rename("y", "z/y", 0))
			},
			want: map[string]string{"x": "dir/", "x/a": "A", "y": "dir/"},
		},
		{
			name: "strict: rename over an empty directory",
			mode: Strict,
			base: map[string]string{"x": "dir/", "x/a": "A", "y": "dir/"},
			run:  func(h *harness) { h.ok(h.d.rename("x", "y", 0)) },
			want: map[string]string{"x": "dir/", "x/a": "A", "y": "dir/"},
		},
		{
			name: "strict: unlink without directory fsync comes back",
			mode: Strict,
			base: map[string]string{"a": "durable"},
			run: func(h *harness) {
				h.write("a", 0, "DURABLE?")
				h.ok(h.d.unlink("a"))
			},
			want: map[string]string{"a": "durable"},
		},
		{
			name: "ext4: unlink committed by another file's fsync",
			mode: Ext4,
			base: map[string]string{"a": "A", "b": "B"},
			run: func(h *harness) {
				h.ok(h.d.unlink("a"))
				h.fsync("b")
			},
			want: map[string]string{"b": "B"},
		},
		{
			name: "hard links share undo data",
			mode: Strict,
			base: map[string]string{"a": "one"},
			run: func(h *harness) {
				h.ok(h.d.link("a", "b"))
				h.ok(h.d.fsyncDir(""))
				h.write("b", 0, "ONE")
			},
			want: map[string]string{"a": "one", "b": "one"},
		},
		{
			name: "hard links share a sync",
			mode: Strict,
			base: map[string]string{"a": "one"},
			run: func(h *harness) {
				h.ok(h.d.link("a", "b"))
				h.ok(h.d.fsyncDir(""))
				h.write("b", 0, "TWO")
				h.fsync("a")
				h.write("a", 0, "six")
			},
			want: map[string]string{"a": "TWO", "b": "TWO"},
		},
		{
			name: "strict: mkdir without fsync vanishes with what is in it",
			mode: Strict,
			run: func(h *harness) {
				h.ok(h.d.mkdir("d", 0o755, sameOwner))
				h.create("d/a", "A")
				h.fsync("d/a")
				h.ok(h.d.symlink("a", "d/s", sameOwner))
			},
			want: map[string]string{},
		},
		{
			name: "strict: fsync of the new directory commits its creation too",
			mode: Strict,
			run: func(h *harness) {
				h.ok(h.d.mkdir("d", 0o755, sameOwner))
				h.create("d/a", "A")
				h.fsync("d/a")
				h.ok(h.d.fsyncDir("d"))
			},
			want: map[string]string{"d": "dir/", "d/a": "A"},
		},
		{
			name: "strict: rmdir without fsync comes back",
			mode: Strict,
			base: map[string]string{"d": "dir/", "e": "dir/"},
			run: func(h *harness) {
				h.ok(h.d.rmdir("d"))
				h.ok(h.d.rmdir("e"))
				h.ok(h.d.mkdir("e", 0o700, sameOwner))
			},
			want: map[string]string{"d": "dir/", "e": "dir/"},
		},
		{
			name: "strict: a new directory something passed through is not forgotten",
			mode: Strict,
			base: map[string]string{"x": "X"},
			run: func(h *harness) {
				h.ok(h.d.mkdir("d", 0o755, sameOwner))
				h.ok(h.d.rename("x", "d/x", 0))
				h.ok(h.d.rename("d/x", "x", 0))
				h.ok(h.d.rmdir("d"))
			},
			want: map[string]string{"x": "X"},
		},
		{
			name: "ext4: the commit interval commits the journal",
			mode: Ext4,
			run: func(h *harness) {
				h.create("a", "A")
				h.ok(h.d.commit())
				h.create("b", "B")
			},
			want: map[string]string{"a": ""},
		},
		{
			name: "writeback: data dirty long enough survives, younger data does not",
			mode: Strict,
			base: map[string]string{"old": "durable", "young": "durable"},
			run: func(h *harness) {
				h.write("old", 0, "WRITTEN")
				h.tick(4 * time.Second)
				h.write("young", 0, "WRITTEN")
				h.write("old", 7, "!") // a later change does not make the file younger
				h.tick(time.Second)
				h.writeback(5 * time.Second) // old has been dirty for 5 s, young for 1 s
			},
			want: map[string]string{"old": "WRITTEN!", "young": "durable"},
		},
		{
			name: "writeback: the whole file, size too",
			mode: Strict,
			base: map[string]string{"a": "abcdef"},
			run: func(h *harness) {
				h.truncate("a", 2)
				h.tick(time.Hour)
				h.write("a", 4, "ef")
				h.writeback(time.Hour)
			},
			want: map[string]string{"a": "ab\x00\x00ef"},
		},
		{
			name: "strict: writeback does not commit a new name",
			mode: Strict,
			base: map[string]string{"d": "dir/"},
			run: func(h *harness) {
				h.create("d/a", "data")
				h.tick(time.Minute)
				h.writeback(time.Second)
			},
			want: map[string]string{"d": "dir/"},
		},
		{
			name: "strict: writeback then directory fsync keeps the data",
			mode: Strict,
			run: func(h *harness) {
				h.create("a", "data")
				h.tick(time.Minute)
				h.writeback(time.Second)
				h.ok(h.d.fsyncDir(""))
			},
			want: map[string]string{"a": "data"},
		},
		{
			name: "ext4: writeback does not commit the journal",
			mode: Ext4,
			base: map[string]string{"a": "A"},
			run: func(h *harness) {
				h.create("b", "B")
				h.ok(h.d.unlink("a"))
				h.tick(time.Minute)
				h.writeback(time.Second)
			},
			want: map[string]string{"a": "A"},
		},
		{
			name: "negative writeback never writes back",
			mode: Ext4,
			base: map[string]string{"a": "durable"},
			run: func(h *harness) {
				h.write("a", 0, "WRITTEN")
				h.tick(1000 * time.Hour)
				h.writeback(-1)
			},
			want: map[string]string{"a": "durable"},
		},
		{
			name: "sync makes everything durable",
			mode: Strict,
			base: map[string]string{"a": "A"},
			run: func(h *harness) {
				h.create("b", "B")
				h.write("a", 1, "AA")
				h.ok(h.d.sync())
			},
			want: map[string]string{"a": "AAA", "b": "B"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.mode)
			h.build(c.base)
			c.run(h)
			h.loss()
			if got := h.tree(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("after the loss:\n got %q\nwant %q", got, c.want)
			}
			if names, _ := os.ReadDir(h.d.stage); len(names) != 0 {
				t.Errorf("staging directory not empty after the loss: %v", names)
			}
		})
	}
}

// build makes base and syncs it.
func (h *harness) build(base map[string]string) {
	h.t.Helper()
	var dirs, files []string
	for p, c := range base {
		if c == "dir/" {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
	}
	for _, p := range sortedByDepth(dirs) {
		h.ok(h.d.mkdir(p, 0o755, sameOwner))
	}
	for _, p := range files {
		h.create(p, base[p])
	}
	h.ok(h.d.sync())
}

func sortedByDepth(ps []string) []string {
	out := append([]string(nil), ps...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if strings.Count(out[j], "/") < strings.Count(out[i], "/") {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestCreatedThenRemovedLeavesNoEntry(t *testing.T) {
	h := newHarness(t, Strict)
	h.create("a", "A")
	h.ok(h.d.mkdir("d", 0o755, sameOwner))
	h.ok(h.d.unlink("a"))
	h.ok(h.d.rmdir("d"))
	if l := h.d.unsynced(); l.Entries != 0 || l.Files != 0 {
		t.Errorf("unsynced after create+unlink and mkdir+rmdir = %+v, want nothing", l)
	}
	// A name someone moved in the meantime must not be forgotten that way.
	h.create("b", "B")
	h.ok(h.d.rename("b", "c", 0))
	h.ok(h.d.unlink("c"))
	if l := h.d.unsynced(); l.Entries != 3 {
		t.Errorf("entries after create, rename, unlink = %d, want 3", l.Entries)
	}
}

func TestLossReport(t *testing.T) {
	h := newHarness(t, Strict)
	h.build(map[string]string{"d": "dir/", "d/a": "0123456789", "d/e": "eeee", "d/g": "gggggggg", "d/h": "hhhh"})
	h.write("d/a", 8, "xxxx")  // 2 bytes over durable ones, 2 beyond the durable size
	h.write("d/a", 10, "yy")   // written twice, counted once
	h.truncate("d/a", 11)      // 3 written bytes left
	h.create("d/b", "bbbbbbb") // 7
	h.with("d/e", func(f *file) { h.ok(h.d.allocate(f, 0, 1<<20, 0)) })
	h.truncate("d/g", 20) // zeroes nobody wrote
	h.write("d/g", 18, "zz")
	h.truncate("d/h", 1) // back to its durable size, but the zeroes are not its durable content
	h.truncate("d/h", 4)
	h.ok(h.d.rename("d/a", "d/c", 0))
	want := Loss{
		Bytes: 12, Files: 3, FilePaths: []string{"d/b", "d/c", "d/g"},
		Resized: 2, ResizedPaths: []string{"d/e", "d/h"},
		Entries: 2, EntryPaths: []string{"d/a", "d/b", "d/c"},
	}
	if got := h.d.unsynced(); !reflect.DeepEqual(got, want) {
		t.Errorf("unsynced = %+v, want %+v", got, want)
	}
	got := h.loss()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loss = %+v, want %+v", got, want)
	}
	if s := got.String(); s != "dropped 12 B unsynced in 3 files (d/b, d/c, d/g); "+
		"2 files' unsynced size changes undone (d/e, d/h); undid 2 directory changes (d/a, d/b, d/c)" {
		t.Errorf("String() = %q", s)
	}
	if l := h.d.unsynced(); !l.Zero() || l.String() != "nothing unsynced" {
		t.Errorf("unsynced after the loss = %+v, want nothing", l)
	}
	etcd := Loss{Bytes: 12700, Files: 2, FilePaths: []string{"member/wal/0001.wal"},
		Resized: 1, ResizedPaths: []string{"member/wal/0.tmp"}, Entries: 1}
	if s := etcd.String(); s != "dropped 12.4 KiB unsynced in 2 files (member/wal/0001.wal); "+
		"1 file's unsynced size change undone (member/wal/0.tmp); undid 1 directory change" {
		t.Errorf("String() = %q", s)
	}
}

func TestLossPathsCapped(t *testing.T) {
	h := newHarness(t, Strict)
	for i := range maxPaths + 1 {
		h.create(fmt.Sprintf("f%02d", i), "x")
	}
	l := h.d.unsynced()
	if l.Files != maxPaths+1 || len(l.FilePaths) != maxPaths+1 || l.FilePaths[0] != "f00" || l.FilePaths[maxPaths] != "…" {
		t.Errorf("unsynced = %+v, want %d files, the first %d named, then …", l, maxPaths+1, maxPaths)
	}
}

func TestSpans(t *testing.T) {
	var s spans
	for _, r := range [][2]int64{{10, 20}, {30, 40}, {0, 5}, {20, 25}, {5, 5}, {35, 50}} {
		s = s.add(r[0], r[1])
	}
	if want := (spans{{0, 5}, {10, 25}, {30, 50}}); !reflect.DeepEqual(s, want) {
		t.Fatalf("spans = %v, want %v", s, want)
	}
	if s = s.add(4, 31); !reflect.DeepEqual(s, spans{{0, 50}}) || s.total() != 50 {
		t.Fatalf("spans after filling the holes = %v", s)
	}
	s = spans{{0, 5}, {10, 25}, {30, 50}}
	if s = s.cut(11); !reflect.DeepEqual(s, spans{{0, 5}, {10, 11}}) || s.total() != 6 {
		t.Errorf("spans cut at 11 = %v", s)
	}
	if s = s.cut(10); !reflect.DeepEqual(s, spans{{0, 5}}) {
		t.Errorf("spans cut at 10 = %v", s)
	}
}

func TestZeroRunsMerge(t *testing.T) {
	h := newHarness(t, Ext4)
	h.build(map[string]string{"a": string(make([]byte, 1<<20))})
	h.with("a", func(f *file) {
		for off := int64(0); off < 1<<20; off += 6 {
			_, err := h.d.writeAt(f, []byte("record"), off)
			h.ok(err)
		}
	})
	var saved []extent
	for _, u := range h.d.undo {
		saved = u.saved
	}
	if len(saved) != 1 || saved[0].data != nil || saved[0].n != 1<<20 {
		t.Fatalf("saved extents: %d, want one zero run for a log appended over zeroes", len(saved))
	}
	h.loss()
	if b, _ := os.ReadFile(filepath.Join(h.d.root, "a")); !bytes.Equal(b, make([]byte, 1<<20)) {
		t.Error("preallocated file not back to zeroes")
	}
}

func TestAllocate(t *testing.T) {
	h := newHarness(t, Ext4)
	h.build(map[string]string{"a": "abc"})
	h.with("a", func(f *file) {
		h.ok(h.d.allocate(f, 0, 4096, 0))
		h.ok(h.d.allocate(f, 0, 8192, unix.FALLOC_FL_KEEP_SIZE))
		if err := h.d.allocate(f, 0, 10, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE); err != syscall.ENOTSUP {
			t.Errorf("punch hole: %v, want ENOTSUP", err)
		}
	})
	// etcd's next WAL segment: preallocated, never synced, nothing written in it yet.
	if l, want := h.d.unsynced(), (Loss{Resized: 1, ResizedPaths: []string{"a"}}); !reflect.DeepEqual(l, want) {
		t.Errorf("unsynced after growing to 4096 = %+v, want %+v", l, want)
	}
	h.write("a", 100, "wal")
	if l, want := h.d.unsynced(), (Loss{Bytes: 3, Files: 1, FilePaths: []string{"a"}}); !reflect.DeepEqual(l, want) {
		t.Errorf("unsynced after writing into the allocation = %+v, want %+v", l, want)
	}
	h.loss()
	if got := h.tree()["a"]; got != "abc" {
		t.Errorf("a = %q after the loss, want the durable abc", got)
	}
}

func TestFaults(t *testing.T) {
	h := newHarness(t, Ext4)
	h.build(map[string]string{"a": "durable"})

	h.d.faults.setError(OpFsync, syscall.EIO)
	h.write("a", 0, "DURABLE")
	h.with("a", func(f *file) {
		if err := h.d.fsync(f); err != syscall.EIO {
			t.Errorf("fsync = %v, want EIO", err)
		}
	})
	if err := h.d.fsyncDir(""); err != syscall.EIO {
		t.Errorf("fsyncdir = %v, want EIO", err)
	}
	h.d.faults.setError(OpWrite, syscall.ENOSPC)
	h.with("a", func(f *file) {
		if _, err := h.d.writeAt(f, []byte("lost"), 0); err != syscall.ENOSPC {
			t.Errorf("write = %v, want ENOSPC", err)
		}
	})
	if got := h.tree()["a"]; got != "DURABLE" {
		t.Errorf("a = %q, a failed write must change nothing", got)
	}
	h.loss()
	if got := h.tree()["a"]; got != "durable" {
		t.Errorf("a = %q after the loss, a failed fsync must make nothing durable", got)
	}

	h.d.faults.heal()
	h.d.faults.setDelay(time.Microsecond)
	h.write("a", 0, "x")
	h.fsync("a")
	if n := h.d.faults.delayed.Load(); n != 2 {
		t.Errorf("delayed operations = %d, want 2 (a write and an fsync)", n)
	}
	h.d.faults.heal()
	h.write("a", 0, "y")
	if n := h.d.faults.delayed.Load(); n != 2 {
		t.Errorf("delayed operations after heal = %d, want still 2", n)
	}
}

func TestStaleHandle(t *testing.T) {
	h := newHarness(t, Ext4)
	h.build(map[string]string{"a": "durable"})
	f, err := h.d.open("a", unix.O_RDWR)
	h.ok(err)
	defer f.close()
	h.loss() // waits d.wait for f, then goes ahead
	if _, err := h.d.writeAt(f, []byte("late"), 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("write on a handle from before the loss = %v, want EIO", err)
	}
	if err := h.d.fsync(f); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync on a handle from before the loss = %v, want EIO", err)
	}
	if got := h.tree()["a"]; got != "durable" {
		t.Errorf("a = %q, a stale handle wrote into the reverted state", got)
	}
}

func TestHiddenStage(t *testing.T) {
	h := newHarness(t, Ext4)
	if _, err := h.d.create(stageName, unix.O_RDWR, 0o644, sameOwner); err != syscall.EPERM {
		t.Errorf("create %s = %v, want EPERM", stageName, err)
	}
	if err := h.d.mkdir(stageName+"/x", 0o755, sameOwner); err != syscall.EPERM {
		t.Errorf("mkdir in %s = %v, want EPERM", stageName, err)
	}
}
