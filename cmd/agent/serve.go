package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/faultline/faultline/compose/proxy"
	"github.com/faultline/faultline/diskfs"
)

// controlSocket is the abstract unix socket the serving agent listens on
// for link and disk commands; abstract, so the FROM scratch image needs no
// writable directory.
var controlSocket = "@faultline-agent"

// server is the serving agent: the member's server as its child, with a
// proxy in front of its peer port and a filesystem layer under its data
// directory, each when asked for.
type server struct {
	proxy *proxy.Proxy // nil without -proxy
	disk  *diskfs.FS   // nil without -disk
	// dataDir is where the layer is mounted: the server's data directory.
	dataDir string

	mu  sync.Mutex
	cmd *exec.Cmd
	// crashed says the harness had the server SIGKILLed on purpose: the
	// agent then stays, so that the harness can still read what the crash
	// did, until it kills the container.
	crashed bool
	exited  chan struct{}
}

// serve runs the member's server as a child and exits as the server does:
//
//	faultline-agent serve [-proxy LISTEN=TARGET] [-disk BACKING=MOUNT [-disk-mode ext4|strict]] -- SERVER ARGS...
func serve(args []string) error {
	const usage = "usage: faultline-agent serve [-proxy LISTEN=TARGET] [-disk BACKING=MOUNT [-disk-mode ext4|strict]] -- SERVER ARGS..."
	s := &server{exited: make(chan struct{})}
	var layer struct {
		backing, mount string
		mode           diskfs.Mode
	}
	for len(args) > 0 && args[0] != "--" {
		if len(args) < 2 {
			return errors.New(usage)
		}
		if args[0] == "-disk-mode" {
			var err error
			if layer.mode, err = diskfs.ParseMode(args[1]); err != nil {
				return err
			}
			args = args[2:]
			continue
		}
		from, to, ok := strings.Cut(args[1], "=")
		switch {
		case !ok:
			return fmt.Errorf("%s %q: want two parts joined by =; %s", args[0], args[1], usage)
		case args[0] == "-proxy":
			s.proxy = &proxy.Proxy{Target: to}
			ln, err := net.Listen("tcp", from)
			if err != nil {
				return fmt.Errorf("peer proxy: %w", err)
			}
			go s.proxy.Serve(ln)
		case args[0] == "-disk":
			layer.backing, layer.mount = from, to
		default:
			return fmt.Errorf("unknown option %q; %s", args[0], usage)
		}
		args = args[2:]
	}
	if len(args) < 2 {
		return errors.New(usage)
	}
	if layer.mount != "" {
		if err := mountLayer(s, layer.backing, layer.mount, layer.mode); err != nil {
			return err
		}
	}
	ctl, err := net.Listen("unix", controlSocket)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	go s.control(ctl)

	s.cmd = exec.Command(args[1], args[2:]...)
	s.cmd.Stdout, s.cmd.Stderr = os.Stdout, os.Stderr
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", args[1], err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	go func() {
		for sig := range sigs {
			s.cmd.Process.Signal(sig)
		}
	}()
	err = s.cmd.Wait()
	close(s.exited)
	s.mu.Lock()
	crashed := s.crashed
	s.mu.Unlock()
	if crashed {
		select {}
	}
	if s.disk != nil {
		s.disk.Unmount()
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode())
	}
	return err
}

// mountLayer serves mount from backing through the filesystem layer.
func mountLayer(s *server, backing, mount string, mode diskfs.Mode) error {
	for _, d := range []string{backing, mount} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	fs, err := diskfs.Mount(backing, mount, diskfs.Options{Name: "faultline", Mode: mode})
	if err != nil {
		return fmt.Errorf("mounting the filesystem layer on %s: %w", mount, err)
	}
	s.disk, s.dataDir = fs, mount
	return nil
}

// crash SIGKILLs the server, waits until it is dead, and then does what
// to its disk.
func (s *server) crash(what func() (string, error)) (string, error) {
	s.mu.Lock()
	s.crashed = true
	s.mu.Unlock()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return "", err
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		return "", errors.New("the server still runs 10s after SIGKILL")
	}
	return what()
}

// describe is the proxy's link setting as the control socket reports it.
func (s *server) describe() string {
	var d, j time.Duration
	if s.proxy != nil {
		d, j = s.proxy.Delay()
	}
	return fmt.Sprintf("delay %s jitter %s", d, j)
}

// control answers one-line commands on the control socket: "delay D J",
// "clear" and "show" for the peer proxy, "disk ..." for the filesystem
// layer (see disk).
func (s *server) control(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil && err != io.EOF {
				return
			}
			out, err := s.command(strings.Fields(line))
			if err != nil {
				fmt.Fprintf(c, "error: %v\n", err)
				return
			}
			fmt.Fprintf(c, "ok %s\n", out)
		}()
	}
}

func (s *server) command(f []string) (string, error) {
	switch {
	case len(f) == 3 && f[0] == "delay":
		d, err1 := time.ParseDuration(f[1])
		j, err2 := time.ParseDuration(f[2])
		if err := errors.Join(err1, err2); err != nil || d < 0 || j < 0 {
			return "", fmt.Errorf("delay %s %s: want two non-negative durations", f[1], f[2])
		}
		if s.proxy == nil {
			return "", errNoProxy
		}
		s.proxy.SetDelay(d, j)
	case len(f) == 1 && f[0] == "clear":
		if s.proxy != nil {
			s.proxy.SetDelay(0, 0)
		}
	case len(f) == 1 && f[0] == "show":
	case len(f) > 1 && f[0] == "disk":
		return s.diskCommand(f[1:])
	default:
		return "", fmt.Errorf("unknown command %q", strings.Join(f, " "))
	}
	return s.describe(), nil
}

// errNoProxy: the member was not started behind the agent's proxy.
var errNoProxy = errors.New("no peer proxy in this member (it was not started with faultline-agent serve -proxy)")

// errNoServer: no serving agent answers in this member.
var errNoServer = errors.New("no serving agent in this member (it was not started with faultline-agent serve)")

// ask sends one command to the serving agent and returns its answer.
func ask(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", controlSocket, 2*time.Second)
	if err != nil {
		return "", errNoServer
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintln(c, cmd); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the serving agent's answer: %w", err)
	}
	line = strings.TrimSpace(line)
	if msg, bad := strings.CutPrefix(line, "error: "); bad {
		return "", errors.New(msg)
	}
	return strings.TrimPrefix(line, "ok "), nil
}
