package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
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

// proxied starts a proxy to target and a control socket for it.
func proxied(t *testing.T, target string) (addr string, l *link) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	l = &link{}
	go proxy(ln, target, l)
	controlSocket = fmt.Sprintf("@faultline-agent-test-%d", time.Now().UnixNano())
	ctl, err := net.Listen("unix", controlSocket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	go control(ctl, l)
	return ln.Addr().String(), l
}

func TestProxyKeepsOrderUnderJitter(t *testing.T) {
	addr, _ := proxied(t, echo(t))
	if out, err := ask("delay 5ms 5ms"); err != nil || out != "delay 5ms jitter 5ms" {
		t.Fatalf("delay: %q %v", out, err)
	}
	c, err := net.Dial("tcp", addr)
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

// TestProxyDelay: nothing comes back sooner than the delay allows (there
// and back through the proxy: two holds).
func TestProxyDelay(t *testing.T) {
	addr, _ := proxied(t, echo(t))
	if _, err := ask("delay 40ms 0s"); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintln(c, "ping")
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Fatalf("round trip took %s through a proxy holding each way 40ms", took)
	}
	if out, err := ask("clear"); err != nil || out != "delay 0s jitter 0s" {
		t.Fatalf("clear: %q %v", out, err)
	}
}

func TestControlCommands(t *testing.T) {
	proxied(t, echo(t))
	for _, tc := range []struct {
		cmd, want, err string
	}{
		{"show", "delay 0s jitter 0s", ""},
		{"delay 100ms 20ms", "delay 100ms jitter 20ms", ""},
		{"show", "delay 100ms jitter 20ms", ""},
		{"delay -1s 0s", "", "want two non-negative durations"},
		{"delay soon 0s", "", "want two non-negative durations"},
		{"slower", "", "unknown command"},
		{"clear", "delay 0s jitter 0s", ""},
	} {
		out, err := ask(tc.cmd)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %q %v, want an error saying %q", tc.cmd, out, err, tc.err)
			}
			continue
		}
		if err != nil || out != tc.want {
			t.Errorf("%q: %q %v, want %q", tc.cmd, out, err, tc.want)
		}
	}
}

func TestNoProxy(t *testing.T) {
	controlSocket = fmt.Sprintf("@faultline-agent-none-%d", time.Now().UnixNano())
	if _, err := ask("show"); err != errNoProxy {
		t.Fatalf("asking with no proxy: %v, want errNoProxy", err)
	}
}
