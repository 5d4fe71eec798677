package diskfs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// namespace maps file paths to inode ids and directory paths to directory ids ("" is the root).
type namespace struct {
	files map[string]int
	dirs  map[string]int
}

func (ns namespace) clone() namespace {
	c := namespace{files: map[string]int{}, dirs: map[string]int{}}
	for k, v := range ns.files {
		c.files[k] = v
	}
	for k, v := range ns.dirs {
		c.dirs[k] = v
	}
	return c
}

// pendingOp is a namespace change the oracle has not committed.
type pendingOp struct {
	apply   func(ns namespace)
	dirs    []int    // directories whose entries it changed
	paths   []string // names it involved
	creates string   // the path it made, for create, link and mkdir
	isDir   bool     // it made a directory
}

// oracle is a plain in-memory statement of what must survive a loss: the namespace as of the
// last commit, every inode with the content of its last fsync or writeback.
type oracle struct {
	mode            Mode
	expire          time.Duration // writeback's age
	cur, durable    namespace
	content, synced map[int][]byte
	dirty           map[int]time.Time // when each inode changed first since it was last durable
	pending         []pendingOp
	nextID          int
}

func newOracle(mode Mode, expire time.Duration) *oracle {
	o := &oracle{mode: mode, expire: expire, content: map[int][]byte{}, synced: map[int][]byte{}, dirty: map[int]time.Time{}}
	o.cur = namespace{files: map[string]int{}, dirs: map[string]int{"": 0}}
	o.durable = o.cur.clone()
	return o
}

func (o *oracle) id() int { o.nextID++; return o.nextID }

func (o *oracle) change(op pendingOp) {
	op.apply(o.cur)
	o.pending = append(o.pending, op)
}

func (o *oracle) commit(n int) {
	for _, op := range o.pending[:n] {
		op.apply(o.durable)
	}
	o.pending = o.pending[n:]
}

// related reports whether a and b are the same path or one lies below the other.
func related(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// removed handles the removal of p, which apply carries out: if the newest pending op that
// involved p made it, both are simply forgotten.
func (o *oracle) removed(p string, isDir bool, op pendingOp) {
	for i := len(o.pending) - 1; i >= 0; i-- {
		q := o.pending[i]
		if !slices.ContainsFunc(q.paths, func(x string) bool { return related(x, p) }) {
			continue
		}
		if q.creates == p && q.isDir == isDir {
			o.pending = slices.Delete(o.pending, i, i+1)
			op.apply(o.cur)
			return
		}
		break
	}
	o.change(op)
}

// changed notes that inode id changed at now.
func (o *oracle) changed(id int, now time.Time) {
	if _, ok := o.dirty[id]; !ok {
		o.dirty[id] = now
	}
}

func (o *oracle) sync(id int) {
	o.synced[id] = slices.Clone(o.content[id])
	delete(o.dirty, id)
}

func (o *oracle) writeback(now time.Time) {
	for id, since := range o.dirty {
		if now.Sub(since) >= o.expire {
			o.sync(id)
		}
	}
}

func (o *oracle) loss() {
	o.pending = nil
	clear(o.dirty)
	o.cur = o.durable.clone()
	o.content = map[int][]byte{}
	for id, b := range o.synced {
		o.content[id] = slices.Clone(b)
	}
}

func parentOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i]
	}
	return ""
}

func sortedKeys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// step does one random operation on both the model and the oracle, a second after the last.
func step(t *testing.T, rng *rand.Rand, h *harness, o *oracle) string {
	h.tick(time.Second)
	pick := func(ks []string) string { return ks[rng.IntN(len(ks))] }
	files, dirs := sortedKeys(o.cur.files), sortedKeys(o.cur.dirs)
	newPath := func() string {
		return strings.TrimPrefix(pick(dirs)+"/"+fmt.Sprintf("f%d", rng.IntN(3)), "/")
	}
	exists := func(p string) bool {
		_, f := o.cur.files[p]
		_, d := o.cur.dirs[p]
		return f || d
	}
	switch k := rng.IntN(14); {
	case k < 2 || len(files) == 0:
		p := newPath()
		if exists(p) {
			return "skip"
		}
		id := o.id()
		o.content[id], o.synced[id] = nil, nil
		o.change(pendingOp{apply: func(ns namespace) { ns.files[p] = id }, dirs: []int{o.cur.dirs[parentOf(p)]}, paths: []string{p}, creates: p})
		f, err := h.d.create(p, unix.O_RDWR, 0o644, sameOwner)
		h.ok(err)
		f.close()
		return "create " + p
	case k < 5:
		p := pick(files)
		id := o.cur.files[p]
		b := o.content[id]
		off := rng.IntN(len(b) + 4)
		data := make([]byte, 1+rng.IntN(6))
		for i := range data {
			data[i] = byte('a' + rng.IntN(26))
		}
		if need := off + len(data); need > len(b) {
			b = append(b, make([]byte, need-len(b))...)
		}
		copy(b[off:], data)
		o.content[id] = b
		o.changed(id, h.clock)
		h.write(p, int64(off), string(data))
		return fmt.Sprintf("write %s %d %q", p, off, data)
	case k < 6:
		p := pick(files)
		id := o.cur.files[p]
		b := o.content[id]
		size := rng.IntN(len(b) + 4)
		if size != len(b) {
			o.changed(id, h.clock)
		}
		if size <= len(b) {
			o.content[id] = b[:size]
		} else {
			o.content[id] = append(b, make([]byte, size-len(b))...)
		}
		h.truncate(p, int64(size))
		return fmt.Sprintf("truncate %s %d", p, size)
	case k < 8:
		p := pick(files)
		o.sync(o.cur.files[p])
		if o.mode == Ext4 {
			o.commit(len(o.pending))
		}
		h.fsync(p)
		return "fsync " + p
	case k < 9:
		p := pick(dirs)
		n := len(o.pending)
		if o.mode == Strict {
			id := o.cur.dirs[p]
			n = 0
			for i, op := range o.pending {
				if slices.Contains(op.dirs, id) {
					n = i + 1
				}
			}
		}
		o.commit(n)
		h.ok(h.d.fsyncDir(p))
		return "fsyncdir " + p
	case k < 10:
		src, dst := pick(files), newPath()
		if _, isDir := o.cur.dirs[dst]; isDir || src == dst {
			return "skip"
		}
		var flags uint32
		if rng.IntN(4) == 0 {
			flags = unix.RENAME_NOREPLACE
		}
		_, taken := o.cur.files[dst]
		err := h.d.rename(src, dst, flags)
		switch {
		case taken && flags != 0:
			if err != syscall.EEXIST {
				t.Fatalf("rename %s %s NOREPLACE over a file: %v, want EEXIST", src, dst, err)
			}
			return "rename refused"
		case taken && o.cur.files[dst] == o.cur.files[src]:
			h.ok(err)
			return "rename between links"
		}
		h.ok(err)
		id := o.cur.files[src]
		o.change(pendingOp{
			apply: func(ns namespace) { delete(ns.files, src); ns.files[dst] = id },
			dirs:  []int{o.cur.dirs[parentOf(src)], o.cur.dirs[parentOf(dst)]}, paths: []string{src, dst},
		})
		return fmt.Sprintf("rename %s %s", src, dst)
	case k < 11:
		p := pick(files)
		o.removed(p, false, pendingOp{apply: func(ns namespace) { delete(ns.files, p) }, dirs: []int{o.cur.dirs[parentOf(p)]}, paths: []string{p}})
		h.ok(h.d.unlink(p))
		return "unlink " + p
	case k < 12:
		src, dst := pick(files), newPath()
		if exists(dst) {
			return "skip"
		}
		id := o.cur.files[src]
		o.change(pendingOp{apply: func(ns namespace) { ns.files[dst] = id }, dirs: []int{o.cur.dirs[parentOf(dst)]}, paths: []string{dst}, creates: dst})
		h.ok(h.d.link(src, dst))
		return fmt.Sprintf("link %s %s", src, dst)
	case k < 13:
		o.writeback(h.clock)
		h.d.writeback(h.clock)
		return "writeback"
	default:
		p := pick([]string{"x", "y", "x/z"})
		if _, ok := o.cur.dirs[p]; ok {
			for q := range o.cur.files {
				if strings.HasPrefix(q, p+"/") {
					return "skip"
				}
			}
			for q := range o.cur.dirs {
				if strings.HasPrefix(q, p+"/") {
					return "skip"
				}
			}
			o.removed(p, true, pendingOp{apply: func(ns namespace) { delete(ns.dirs, p) }, dirs: []int{o.cur.dirs[parentOf(p)]}, paths: []string{p}})
			h.ok(h.d.rmdir(p))
			return "rmdir " + p
		}
		if _, ok := o.cur.dirs[parentOf(p)]; !ok || exists(p) {
			return "skip"
		}
		id := o.id()
		o.change(pendingOp{apply: func(ns namespace) { ns.dirs[p] = id }, dirs: []int{o.cur.dirs[parentOf(p)]}, paths: []string{p}, creates: p, isDir: true})
		h.ok(h.d.mkdir(p, 0o755, sameOwner))
		return "mkdir " + p
	}
}

// check compares the backing directory with the oracle's current state: names, contents and
// which names are links of one file.
func check(t *testing.T, h *harness, o *oracle, when string, log []string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: %s\nops:\n  %s", when, fmt.Sprintf(format, args...), strings.Join(log, "\n  "))
	}
	inoOf := map[int]uint64{}
	seen := 0
	err := filepath.Walk(h.d.root, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(h.d.root, path)
		if rel == "." {
			return nil
		}
		if rel == stageName {
			return filepath.SkipDir
		}
		seen++
		if fi.IsDir() {
			if _, ok := o.cur.dirs[rel]; !ok {
				fail("directory %s should not exist", rel)
			}
			return nil
		}
		id, ok := o.cur.files[rel]
		if !ok {
			fail("file %s should not exist", rel)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, o.content[id]) {
			fail("%s = %q, want %q", rel, b, o.content[id])
		}
		ino := fi.Sys().(*syscall.Stat_t).Ino
		if prev, ok := inoOf[id]; ok && prev != ino {
			fail("%s is no longer a link of the same file", rel)
		}
		inoOf[id] = ino
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(o.cur.files) + len(o.cur.dirs) - 1; seen != want {
		fail("backing holds %d names, want %d: %v %v", seen, want, sortedKeys(o.cur.files), sortedKeys(o.cur.dirs))
	}
}

// TestRandomAgainstOracle runs seeded random operation sequences with random syncs and
// writebacks, then a loss, a few rounds each, and compares what survives with the oracle.
func TestRandomAgainstOracle(t *testing.T) {
	for _, mode := range []Mode{Strict, Ext4} {
		for seed := uint64(1); seed <= 150; seed++ {
			t.Run(fmt.Sprintf("%s/%d", mode, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 0))
				h := newHarness(t, mode)
				h.d.expire = time.Duration(rng.IntN(20)) * time.Second
				o := newOracle(mode, h.d.expire)
				var log []string
				for round := range 3 {
					for range 30 {
						log = append(log, step(t, rng, h, o))
					}
					check(t, h, o, fmt.Sprintf("round %d before the loss", round), log)
					if got := h.d.unsynced().Entries; got != len(o.pending) {
						t.Fatalf("round %d: %d uncommitted entries, want %d\nops:\n  %s", round, got, len(o.pending), strings.Join(log, "\n  "))
					}
					h.loss()
					o.loss()
					log = append(log, "LOSS")
					check(t, h, o, fmt.Sprintf("round %d after the loss", round), log)
					if names, _ := os.ReadDir(h.d.stage); len(names) != 0 {
						t.Fatalf("round %d: staging directory holds %d entries after the loss", round, len(names))
					}
				}
			})
		}
	}
}
