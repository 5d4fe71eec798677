package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// echo serves connections by writing back what it reads.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// serve starts p on a loopback port and returns its address.
func serve(t *testing.T, p *Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); p.Close() })
	go p.Serve(ln)
	return ln.Addr().String()
}

// ping writes a line and waits, at most limit, for it to come back.
func ping(c net.Conn, limit time.Duration) error {
	c.SetDeadline(time.Now().Add(limit))
	if _, err := fmt.Fprintln(c, "ping"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		err = fmt.Errorf("got %q back", line)
	}
	return err
}

func TestKeepsOrderUnderJitter(t *testing.T) {
	p := &Proxy{Target: echo(t)}
	p.SetDelay(5*time.Millisecond, 5*time.Millisecond)
	c, err := net.Dial("tcp", serve(t, p))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 200
	go func() {
		for i := range n {
			fmt.Fprintf(c, "%d\n", i)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	r := bufio.NewReader(c)
	for i := range n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%d\n", i); line != want {
			t.Fatalf("line %d is %q: reordered", i, line)
		}
	}
}

// TestDelay: nothing comes back sooner than the delay allows (there and
// back through the proxy: two holds).
func TestDelay(t *testing.T) {
	p := &Proxy{Target: echo(t)}
	p.SetDelay(40*time.Millisecond, 0)
	c, err := net.Dial("tcp", serve(t, p))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if err := ping(c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Fatalf("round trip took %s through a proxy holding each way 40ms", took)
	}
}

// TestCut: a cut source's open connection is closed and its new ones get
// no answer, while other sources pass; after the heal its held connection
// is closed and a new one passes again.
func TestCut(t *testing.T) {
	// Each source dials from a loopback address of its own.
	from := map[string]string{"127.0.0.2": "a", "127.0.0.3": "b"}
	p := &Proxy{Target: echo(t), Source: func(c net.Conn) string {
		return from[c.RemoteAddr().(*net.TCPAddr).IP.String()]
	}}
	addr := serve(t, p)
	dial := func(name string) net.Conn {
		t.Helper()
		ip := "127.0.0.2"
		if name == "b" {
			ip = "127.0.0.3"
		}
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := dial("a"), dial("b")
	if err := ping(a, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ping(b, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	p.SetCut([]string{"a"})
	if err := ping(a, time.Second); err == nil {
		t.Error("a's open connection still answers after a was cut off")
	}
	if err := ping(b, 5*time.Second); err != nil {
		t.Errorf("b, not cut, gets no answer: %v", err)
	}
	held := dial("a")
	if err := ping(held, 300*time.Millisecond); err == nil {
		t.Error("a new connection from a answered while a is cut off")
	}

	p.SetCut(nil)
	held.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil || err != io.EOF && !isReset(err) {
		t.Errorf("a's held connection after the heal: %v, want it closed", err)
	}
	if err := ping(dial("a"), 5*time.Second); err != nil {
		t.Errorf("a new connection from a after the heal: %v", err)
	}
}

func isReset(err error) bool {
	ne, ok := err.(*net.OpError)
	return ok && !ne.Timeout()
}
