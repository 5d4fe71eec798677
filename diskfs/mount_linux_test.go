package diskfs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// canMount reports why this process cannot mount FUSE, or "".
func canMount() string {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "no /dev/fuse"
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "cannot read capabilities: " + err.Error()
	}
	for _, line := range strings.Split(string(status), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err == nil && caps&(1<<unix.CAP_SYS_ADMIN) != 0 {
				return ""
			}
		}
	}
	return "no CAP_SYS_ADMIN"
}

// mounted is a diskfs mount for one test: files are named relative to mnt.
type mounted struct {
	t            *testing.T
	fsys         *FS
	backing, mnt string
}

// mountForTest mounts opts, with no writeback unless opts ask for some: the tests lose unsynced
// data on purpose, and a slow run must not see it written back first.
func mountForTest(t testing.TB, opts Options) *mounted {
	t.Helper()
	if why := canMount(); why != "" {
		t.Skip("cannot mount FUSE here: " + why)
	}
	if opts.Writeback == 0 {
		opts.Writeback = -1
	}
	dir := t.TempDir()
	m := &mounted{backing: filepath.Join(dir, "backing"), mnt: filepath.Join(dir, "mnt")}
	for _, p := range []string{m.backing, m.mnt} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fsys, err := Mount(m.backing, m.mnt, opts)
	if err != nil {
		t.Fatal(err)
	}
	fsys.d.wait = 500 * time.Millisecond
	m.fsys = fsys
	t.Cleanup(func() {
		if err := fsys.Unmount(); err != nil {
			t.Error(err)
		}
	})
	if tt, ok := t.(*testing.T); ok {
		m.t = tt
	}
	return m
}

func (m *mounted) path(p string) string { return filepath.Join(m.mnt, p) }

func (m *mounted) ok(err error) {
	m.t.Helper()
	if err != nil {
		m.t.Fatal(err)
	}
}

func (m *mounted) writeFile(p, content string, sync bool) {
	m.t.Helper()
	f, err := os.Create(m.path(p))
	m.ok(err)
	_, err = f.WriteString(content)
	m.ok(err)
	if sync {
		m.ok(f.Sync())
	}
	m.ok(f.Close())
}

func (m *mounted) writeAt(p string, off int64, data string, sync bool) {
	m.t.Helper()
	f, err := os.OpenFile(m.path(p), os.O_WRONLY, 0)
	m.ok(err)
	_, err = f.WriteAt([]byte(data), off)
	m.ok(err)
	if sync {
		m.ok(f.Sync())
	}
	m.ok(f.Close())
}

func (m *mounted) syncDir(p string) {
	m.t.Helper()
	f, err := os.Open(m.path(p))
	m.ok(err)
	defer f.Close()
	m.ok(f.Sync())
}

func (m *mounted) loss() Loss {
	m.t.Helper()
	l, err := m.fsys.PowerLoss()
	m.ok(err)
	return l
}

// tree lists the mount as path → content (see readTree), read through FUSE.
func (m *mounted) tree() map[string]string {
	m.t.Helper()
	out, err := readTree(m.mnt)
	m.ok(err)
	return out
}

func (m *mounted) wantTree(want map[string]string) {
	m.t.Helper()
	got := m.tree()
	if len(got) != len(want) {
		m.t.Errorf("tree after the loss:\n got %q\nwant %q", got, want)
		return
	}
	for p, c := range want {
		if got[p] != c {
			m.t.Errorf("tree after the loss:\n got %q\nwant %q", got, want)
			return
		}
	}
}

func TestMountScenarios(t *testing.T) {
	cases := []struct {
		name string
		mode Mode
		run  func(m *mounted)
		want map[string]string
	}{
		{
			name: "write fsync write",
			run: func(m *mounted) {
				m.writeFile("a", "hello world", true)
				m.writeAt("a", 0, "HELLO", true)
				m.writeAt("a", 6, "WORLD, and more", false)
			},
			want: map[string]string{"a": "HELLO world"},
		},
		{
			name: "strict: fsynced file in an unsynced directory vanishes",
			mode: Strict,
			run:  func(m *mounted) { m.writeFile("a", "data", true) },
			want: map[string]string{},
		},
		{
			name: "ext4: fsync of the file commits its name",
			mode: Ext4,
			run:  func(m *mounted) { m.writeFile("a", "data", true) },
			want: map[string]string{"a": "data"},
		},
		{
			name: "strict: directory fsync keeps the file",
			mode: Strict,
			run: func(m *mounted) {
				m.ok(os.Mkdir(m.path("d"), 0o755))
				m.writeFile("d/a", "data", true)
				m.syncDir("d")
			},
			want: map[string]string{"d": "dir/", "d/a": "data"},
		},
		{
			name: "strict: rename over a target without directory fsync reverts",
			mode: Strict,
			run: func(m *mounted) {
				m.writeFile("a", "A", true)
				m.writeFile("b", "old b", true)
				m.syncDir("")
				m.writeAt("b", 0, "NEW B", false)
				m.ok(os.Rename(m.path("a"), m.path("b")))
			},
			want: map[string]string{"a": "A", "b": "old b"},
		},
		{
			name: "strict: rename with directory fsync stays",
			mode: Strict,
			run: func(m *mounted) {
				m.writeFile("a", "A", true)
				m.writeFile("b", "old b", true)
				m.syncDir("")
				m.ok(os.Rename(m.path("a"), m.path("b")))
				m.syncDir("")
			},
			want: map[string]string{"b": "A"},
		},
		{
			name: "strict: unlink without directory fsync comes back",
			mode: Strict,
			run: func(m *mounted) {
				m.writeFile("a", "A", true)
				m.syncDir("")
				m.ok(os.Remove(m.path("a")))
			},
			want: map[string]string{"a": "A"},
		},
		{
			name: "strict: mkdir and rmdir",
			mode: Strict,
			run: func(m *mounted) {
				m.ok(os.Mkdir(m.path("keep"), 0o755))
				m.syncDir("")
				m.ok(os.Remove(m.path("keep")))
				m.ok(os.Mkdir(m.path("new"), 0o755))
				m.ok(os.Mkdir(m.path("tmp"), 0o755))
				m.ok(os.Remove(m.path("tmp")))
			},
			want: map[string]string{"keep": "dir/"},
		},
		{
			name: "strict: a link that is undone leaves the other name working",
			mode: Strict,
			run: func(m *mounted) {
				m.writeFile("a", "one", true)
				m.syncDir("")
				m.ok(os.Link(m.path("a"), m.path("b")))
				m.writeAt("b", 0, "two", true)
				m.tree()
				m.loss()
				m.writeAt("a", 0, "six", true)
				m.ok(os.Link(m.path("a"), m.path("c")))
				m.syncDir("")
			},
			want: map[string]string{"a": "six", "c": "six"},
		},
		{
			name: "hard link and symlink",
			mode: Strict,
			run: func(m *mounted) {
				m.writeFile("a", "one", true)
				m.ok(os.Link(m.path("a"), m.path("b")))
				m.syncDir("")
				m.ok(os.Symlink("a", m.path("s")))
				m.writeAt("b", 0, "ONE", false)
			},
			want: map[string]string{"a": "one", "b": "one"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mountForTest(t, Options{Mode: c.mode, CommitInterval: -1})
			c.run(m)
			// Read everything once so the kernel has it cached: the loss must not leave stale pages.
			m.tree()
			m.loss()
			m.wantTree(c.want)
		})
	}
}

func TestMountHidesStage(t *testing.T) {
	m := mountForTest(t, Options{})
	names, err := os.ReadDir(m.mnt)
	m.ok(err)
	if len(names) != 0 {
		t.Errorf("fresh mount lists %v, want nothing", names)
	}
	if _, err := os.Stat(m.path(stageName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat %s = %v, want not found", stageName, err)
	}
	if err := os.Mkdir(m.path(stageName), 0o755); !errors.Is(err, syscall.EPERM) {
		t.Errorf("mkdir %s = %v, want EPERM", stageName, err)
	}
}

func TestMountStaleHandle(t *testing.T) {
	m := mountForTest(t, Options{Mode: Strict})
	m.writeFile("a", "durable", true)
	m.syncDir("")
	f, err := os.OpenFile(m.path("a"), os.O_RDWR, 0)
	m.ok(err)
	defer f.Close()
	_, err = f.WriteAt([]byte("DURABLE?"), 0)
	m.ok(err)
	m.fsys.d.wait = 10 * time.Millisecond // f stays open on purpose
	m.loss()
	if _, err := f.WriteAt([]byte("late write"), 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("write on a handle from before the loss = %v, want EIO", err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync on a handle from before the loss = %v, want EIO", err)
	}
	m.wantTree(map[string]string{"a": "durable"})
}

func TestMountFaults(t *testing.T) {
	m := mountForTest(t, Options{})
	m.writeFile("a", "durable", true)

	m.fsys.SetError(OpFsync, syscall.EIO)
	f, err := os.OpenFile(m.path("a"), os.O_RDWR, 0)
	m.ok(err)
	_, err = f.WriteAt([]byte("DURABLE"), 0)
	m.ok(err)
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync with an EIO fault = %v, want EIO", err)
	}
	m.fsys.SetError(OpWrite, syscall.ENOSPC)
	if _, err := f.WriteAt([]byte("nope"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write with an ENOSPC fault = %v, want ENOSPC", err)
	}
	m.ok(f.Close())
	m.loss()
	m.wantTree(map[string]string{"a": "durable"})

	m.fsys.Heal()
	m.fsys.SetDelay(time.Millisecond)
	m.writeAt("a", 0, "x", true)
	if n := m.fsys.d.faults.delayed.Load(); n < 2 {
		t.Errorf("delayed operations = %d, want at least a write and an fsync", n)
	}
	m.fsys.Heal()
	before := m.fsys.d.faults.delayed.Load()
	m.writeAt("a", 0, "y", true)
	if n := m.fsys.d.faults.delayed.Load(); n != before {
		t.Errorf("delayed operations after Heal went from %d to %d", before, n)
	}
}

// TestMountWAL does what etcd's WAL and snapshotter do: preallocate a segment in a temporary
// file, rename it into place and fsync the directory, then append records with fdatasync; and
// write a snapshot to a temporary file, fsync, rename, fsync the directory. After a loss the
// segment must hold every synced record, in its preallocated size, and nothing unsynced.
func TestMountWAL(t *testing.T) {
	m := mountForTest(t, Options{Mode: Strict})
	m.ok(os.MkdirAll(m.path("member/wal"), 0o700))
	m.ok(os.MkdirAll(m.path("member/snap"), 0o700))
	m.syncDir("member")
	m.syncDir("")

	const segment = 1 << 20
	tmp := m.path("member/wal/0.tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	m.ok(err)
	defer f.Close()
	m.ok(unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB))
	m.ok(unix.Fallocate(int(f.Fd()), 0, 0, segment))
	m.ok(f.Sync())
	m.ok(os.Rename(tmp, m.path("member/wal/0000000000000000-0000000000000000.wal")))
	m.syncDir("member/wal")

	var want []byte
	record := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 100+i) }
	var off int64
	for i := range 20 {
		r := record(i)
		_, err := f.WriteAt(r, off)
		m.ok(err)
		off += int64(len(r))
		m.ok(unix.Fdatasync(int(f.Fd())))
		want = append(want, r...)
	}
	_, err = f.WriteAt(record(99), off) // acknowledged to nobody: never synced
	m.ok(err)

	m.writeFile("member/snap/1.snap.broken", "snapshot", true)
	m.ok(os.Rename(m.path("member/snap/1.snap.broken"), m.path("member/snap/1.snap")))
	m.syncDir("member/snap")
	m.writeFile("member/snap/2.snap.broken", "half a snapshot", false)
	m.ok(f.Close())

	loss := m.loss()
	if loss.Files == 0 || loss.Bytes < int64(len(record(99))) {
		t.Errorf("loss %v does not count the unsynced record", loss)
	}
	got, err := os.ReadFile(m.path("member/wal/0000000000000000-0000000000000000.wal"))
	m.ok(err)
	if len(got) != segment {
		t.Fatalf("segment is %d bytes after the loss, want the preallocated %d", len(got), segment)
	}
	if !bytes.Equal(got[:len(want)], want) || !bytes.Equal(got[len(want):], make([]byte, segment-len(want))) {
		t.Error("segment after the loss is not exactly the synced records followed by zeroes")
	}
	names, err := os.ReadDir(m.path("member/snap"))
	m.ok(err)
	if len(names) != 1 || names[0].Name() != "1.snap" {
		t.Errorf("member/snap holds %v after the loss, want just 1.snap", names)
	}
	if b, _ := os.ReadFile(m.path("member/snap/1.snap")); string(b) != "snapshot" {
		t.Errorf("1.snap = %q", b)
	}
}

// mappedBytes reads the bytes at offsets of the file at path through a shared read-only
// mapping, as bbolt reads its db. A child process does the reading: a page fault on this
// process's own mount blocks a thread where the Go runtime cannot stop it, and a garbage
// collection then waits for it while the server goroutines wait for the collection.
func mappedBytes(t *testing.T, path string, offsets ...int) []byte {
	t.Helper()
	args := []string{"-test.run=^TestMappedBytesHelper$", "--", path}
	for _, off := range offsets {
		args = append(args, strconv.Itoa(off))
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DISKFS_MAPPED_BYTES=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reading %s through a mapping: %v", path, err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	b, err := hex.DecodeString(line)
	if err != nil || len(b) != len(offsets) {
		t.Fatalf("mapping helper said %q", out)
	}
	return b
}

// TestMappedBytesHelper is the child of mappedBytes.
func TestMappedBytesHelper(t *testing.T) {
	if os.Getenv("DISKFS_MAPPED_BYTES") == "" {
		t.Skip("only run by mappedBytes")
	}
	args := flag.Args()
	f, err := os.Open(args[0])
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	mapping, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, a := range args[1:] {
		off, _ := strconv.Atoi(a)
		b = append(b, mapping[off])
	}
	fmt.Println(hex.EncodeToString(b))
}

// TestMountBoltLike writes a file the way bbolt does, pwrite of pages and fdatasync, reading it
// through a shared read-only mapping, and checks a committed transaction survives a loss while
// the uncommitted one does not, also through a mapping made after the loss.
func TestMountBoltLike(t *testing.T) {
	m := mountForTest(t, Options{})
	const page = 4096
	db := m.path("db")
	f, err := os.OpenFile(db, os.O_CREATE|os.O_RDWR, 0o600)
	m.ok(err)
	m.ok(f.Truncate(4 * page))
	m.ok(f.Sync())
	commit := func(txid byte, sync bool) {
		_, err := f.WriteAt(bytes.Repeat([]byte{txid}, page), int64(txid)*page)
		m.ok(err)
		_, err = f.WriteAt([]byte{txid}, 0) // the meta page names the last transaction
		m.ok(err)
		if sync {
			m.ok(unix.Fdatasync(int(f.Fd())))
		}
	}
	commit(1, true)
	commit(2, false)
	if b := mappedBytes(t, db, 0, page, 2*page); !bytes.Equal(b, []byte{2, 1, 2}) {
		t.Fatalf("before the loss the mapping shows meta %d, page 1 %d, page 2 %d; want 2, 1, 2", b[0], b[1], b[2])
	}
	m.ok(f.Close())
	m.loss()
	if b := mappedBytes(t, db, 0, page, 2*page); !bytes.Equal(b, []byte{1, 1, 0}) {
		t.Errorf("after the loss the mapping shows meta %d, page 1 %d, page 2 %d; want 1, 1, 0", b[0], b[1], b[2])
	}
}

func TestMountSyncAndUnsynced(t *testing.T) {
	m := mountForTest(t, Options{Mode: Strict})
	m.writeFile("a", "12345", false)
	u := m.fsys.Unsynced()
	if want := (Loss{Bytes: 5, Files: 1, FilePaths: []string{"a"}, Entries: 1, EntryPaths: []string{"a"}}); !reflect.DeepEqual(u, want) {
		t.Errorf("unsynced = %+v, want %+v", u, want)
	}
	m.ok(m.fsys.Sync())
	if l := m.loss(); !l.Zero() {
		t.Errorf("loss after Sync = %v, want nothing", l)
	}
	m.wantTree(map[string]string{"a": "12345"})
}

// TestMountWriteback: data left dirty becomes durable on its own, through the flusher Mount starts.
func TestMountWriteback(t *testing.T) {
	m := mountForTest(t, Options{Mode: Strict, Writeback: 20 * time.Millisecond})
	m.writeFile("a", "durable", true)
	m.syncDir("")
	m.writeAt("a", 0, "WRITTEN", false)
	for deadline := time.Now().Add(10 * time.Second); !m.fsys.Unsynced().Zero(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still unsynced after 10 s: %v", m.fsys.Unsynced())
		}
	}
	if l := m.loss(); !l.Zero() {
		t.Errorf("loss after writeback = %v, want nothing", l)
	}
	m.wantTree(map[string]string{"a": "WRITTEN"})
}
