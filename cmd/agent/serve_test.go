package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/compose/proxy"
)

// controlled starts a control socket for a proxy. What the proxy does with
// the settings is compose/proxy's to test.
func controlled(t *testing.T) {
	t.Helper()
	controlSocket = fmt.Sprintf("@faultline-agent-test-%d", time.Now().UnixNano())
	ctl, err := net.Listen("unix", controlSocket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	go (&server{proxy: &proxy.Proxy{}}).control(ctl)
}

func TestControlCommands(t *testing.T) {
	controlled(t)
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

func TestNoServer(t *testing.T) {
	controlSocket = fmt.Sprintf("@faultline-agent-none-%d", time.Now().UnixNano())
	if _, err := ask("show"); err != errNoServer {
		t.Fatalf("asking with no serving agent: %v, want errNoServer", err)
	}
}

// A serving agent without a proxy or a layer says so, and still heals.
func TestServerWithoutProxyOrDisk(t *testing.T) {
	s := &server{}
	for _, tc := range []struct{ cmd, err string }{
		{"delay 1s 0s", "no peer proxy"},
		{"disk power-loss", "no filesystem layer"},
		{"disk slow 1s", "no filesystem layer"},
		{"clear", ""},
		{"show", ""},
	} {
		_, err := s.command(strings.Fields(tc.cmd))
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: error %v, want %q", tc.cmd, err, tc.err)
		}
	}
}
