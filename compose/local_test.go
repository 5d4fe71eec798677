package compose

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestCleanLocal removes the folder of a dead local run and keeps the one
// whose member still runs.
func TestCleanLocal(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dead := filepath.Join(os.TempDir(), "faultline-local-dead-1")
	live := filepath.Join(os.TempDir(), "faultline-local-live-2")
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(filepath.Join(d, "n1"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A member's command line names its data folder.
	member := exec.Command("sh", "-c", "sleep 30", "--data-dir", filepath.Join(live, "n1"))
	if err := member.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { member.Process.Kill(); member.Wait() }()

	n, err := CleanLocal()
	if err != nil || n != 1 {
		t.Errorf("CleanLocal removed %d folders (%v), want 1", n, err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead run's folder is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live run's folder is gone: %v", err)
	}
}
