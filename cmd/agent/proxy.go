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
	"syscall"
	"time"

	"github.com/faultline/faultline/compose/proxy"
)

// controlSocket is the abstract unix socket the serving agent listens on
// for link settings; abstract, so the FROM scratch image needs no
// writable directory.
var controlSocket = "@faultline-agent"

// describe is the proxy's link setting as the control socket reports it.
func describe(p *proxy.Proxy) string {
	d, j := p.Delay()
	return fmt.Sprintf("delay %s jitter %s", d, j)
}

// serve runs the member's server as a child, with a proxy in front of its
// peer port and the control socket, and exits as the server does:
//
//	faultline-agent serve -proxy LISTEN=TARGET -- SERVER ARGS...
func serve(args []string) error {
	if len(args) < 4 || args[0] != "-proxy" || args[2] != "--" {
		return errors.New("usage: faultline-agent serve -proxy LISTEN=TARGET -- SERVER ARGS...")
	}
	listen, target, ok := strings.Cut(args[1], "=")
	if !ok {
		return fmt.Errorf("-proxy %q: want LISTEN=TARGET, e.g. 0.0.0.0:2380=127.0.0.1:2381", args[1])
	}
	p := &proxy.Proxy{Target: target}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("peer proxy: %w", err)
	}
	go p.Serve(ln)
	ctl, err := net.Listen("unix", controlSocket)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	go control(ctl, p)

	cmd := exec.Command(args[3], args[4:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", args[3], err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode())
	}
	return err
}

// control answers one-line commands on the control socket: "delay D J",
// "clear", "show".
func control(ln net.Listener, p *proxy.Proxy) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil && err != io.EOF {
				return
			}
			f := strings.Fields(line)
			switch {
			case len(f) == 3 && f[0] == "delay":
				d, err1 := time.ParseDuration(f[1])
				j, err2 := time.ParseDuration(f[2])
				if err := errors.Join(err1, err2); err != nil || d < 0 || j < 0 {
					fmt.Fprintf(c, "error: delay %s %s: want two non-negative durations\n", f[1], f[2])
					return
				}
				p.SetDelay(d, j)
			case len(f) == 1 && f[0] == "clear":
				p.SetDelay(0, 0)
			case len(f) == 1 && f[0] == "show":
			default:
				fmt.Fprintf(c, "error: unknown command %q\n", strings.TrimSpace(line))
				return
			}
			fmt.Fprintf(c, "ok %s\n", describe(p))
		}()
	}
}

// errNoProxy: the member was not started behind the agent's proxy.
var errNoProxy = errors.New("no peer proxy in this member (it was not started with faultline-agent serve)")

// ask sends one command to the serving agent and returns its answer.
func ask(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", controlSocket, 2*time.Second)
	if err != nil {
		return "", errNoProxy
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, cmd); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the proxy's answer: %w", err)
	}
	line = strings.TrimSpace(line)
	if msg, bad := strings.CutPrefix(line, "error: "); bad {
		return "", errors.New(msg)
	}
	return strings.TrimPrefix(line, "ok "), nil
}
