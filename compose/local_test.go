package compose

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSocketInode finds the dialling socket of a loopback connection in
// /proc/net/tcp and among this process's file descriptors, which is how a
// local member's peer proxy tells who dialled.
func TestSocketInode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()

	// As the proxy sees it: the remote end is the dialler's socket.
	inode, err := socketInode(accepted.RemoteAddr(), accepted.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	link, err := os.Readlink(filepath.Join("/proc/self/fd", strconv.Itoa(int(f.Fd()))))
	if err != nil {
		t.Fatal(err)
	}
	if want := "socket:[" + inode + "]"; link != want {
		t.Errorf("the dialler's descriptor is %s, the socket table says %s", link, want)
	}
	if _, err := socketInode(accepted.LocalAddr(), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}); err == nil {
		t.Error("found a socket for a connection that does not exist")
	}
}

func TestProcAddr(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1:2380", "0100007F:094C"},
		{"127.12.34.11:80", "0B220C7F:0050"},
	} {
		a, _ := net.ResolveTCPAddr("tcp", tc.addr)
		if got, err := procAddr(a); err != nil || got != tc.want {
			t.Errorf("procAddr(%s) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
	if _, err := procAddr(&net.TCPAddr{IP: net.ParseIP("::1"), Port: 1}); err == nil {
		t.Error("an IPv6 address was taken for IPv4")
	}
}

// TestCleanLocal removes the folders of local runs whose harness exited,
// and of older runs (no owner in the name) none of whose members runs; it
// keeps a live harness's folder even while none of its members runs (as
// after kill-all), and any folder a member still runs in. A cluster
// faultline up left running is kept while a member of it runs, as such,
// and removed once none does.
func TestCleanLocal(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dir := func(name string) string { return filepath.Join(os.TempDir(), localPrefix+name) }
	dead, _ := parseOwner(exited(t))
	liveDir, err := newLocalDir("live", false)
	if err != nil {
		t.Fatal(err)
	}
	upDir, err := newLocalDir("up", true)
	if err != nil {
		t.Fatal(err)
	}
	upGoneDir, err := newLocalDir("upgone", true)
	if err != nil {
		t.Fatal(err)
	}
	var (
		deadDir   = dir("dead-" + dead.pidStart() + "-2")
		oldDir    = dir("old-3")
		memberDir = dir("member-" + dead.pidStart() + "-4")
	)
	for _, d := range []string{liveDir, deadDir, oldDir, memberDir, upDir, upGoneDir} {
		if err := os.MkdirAll(filepath.Join(d, "n1"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A member's command line names its data folder.
	member := exec.Command("sh", "-c", "sleep 30", "--data-dir", filepath.Join(memberDir, "n1"))
	if err := member.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { member.Process.Kill(); member.Wait() }()
	upMember := exec.Command("sh", "-c", "sleep 30", "--data-dir", filepath.Join(upDir, "n1"))
	if err := upMember.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { upMember.Process.Kill(); upMember.Wait() }()

	exists := func(d string) bool { _, err := os.Stat(d); return err == nil }
	runs, err := CleanLocal(false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"live": true, "dead": false, "old": false, "member": true, "up": true, "upgone": false}
	for _, s := range runs {
		if s.Kept != want[s.RunID] || exists(s.Dir) != s.Kept {
			t.Errorf("run %s (%s): kept %v (%s), folder there %v; want kept %v", s.RunID, s.Dir, s.Kept, s.Why, exists(s.Dir), want[s.RunID])
		}
		if strings.HasPrefix(s.RunID, "up") && !strings.Contains(s.Why, "faultline up") {
			t.Errorf("run %s: %q does not say faultline up made it", s.RunID, s.Why)
		}
	}
	if len(runs) != len(want) {
		t.Errorf("found %+v, want the runs %v", runs, want)
	}

	// --all takes the live harness's folder too, but not the one a member
	// still runs in; run ids limit it to those runs.
	if runs, err := CleanLocal(true, "live"); err != nil || len(runs) != 1 || runs[0].Kept || exists(liveDir) {
		t.Errorf("CleanLocal(all, live) = %+v, %v; the folder is there: %v", runs, err, exists(liveDir))
	}
	upMember.Process.Kill()
	upMember.Wait()
	if runs, err := CleanLocal(true, "up"); err != nil || len(runs) != 1 || runs[0].Kept || exists(upDir) {
		t.Errorf("CleanLocal(all, up) once its member exited = %+v, %v; the folder is there: %v", runs, err, exists(upDir))
	}
	if runs, err := CleanLocal(true); err != nil || len(runs) != 1 || !runs[0].Kept || !exists(memberDir) {
		t.Errorf("CleanLocal(all) = %+v, %v; want the folder a member runs in kept", runs, err)
	}
}
