// Command faultline-agent is the helper faultline places in every member
// image. The harness runs it with docker exec to inject network faults from
// inside the member's network namespace, where the member's own packets
// pass, so the harness's clients (which reach the member from the host
// through the bridge gateway) are never cut off. The network commands are
// built in one place, compose/links.go (the containers' compose.Links), and
// must match what run parses here.
//
//	faultline-agent drop [-loss PCT] IP...
//	                             drop every packet arriving from these addresses, or PCT% of them at
//	                             random (replaces earlier drops)
//	faultline-agent heal         remove every rule the agent made
//	faultline-agent list         print the addresses currently dropped, one per line
//	faultline-agent serve [-proxy LISTEN=TARGET] [-disk BACKING=MOUNT] -- SERVER ARGS...
//	                             the image's entrypoint when peer links are to be slowed or disks
//	                             damaged: run the server, with a proxy in front of its peer port,
//	                             and its data directory MOUNT served from BACKING through
//	                             faultline's filesystem layer
//	faultline-agent disk CMD...  a disk command for the serving agent: power-loss, flip SEED GLOB...,
//	                             cut SEED GLOB..., slow D, fail eio|enospc, heal (cmd/agent/disk.go)
//	faultline-agent delay D J    hold every chunk crossing the peer proxy D ± J (0 0: no delay)
//	faultline-agent check        create and remove a table: does netfilter work here?
//	faultline-agent netem        does this kernel have the netem qdisc? (adds one to eth0, removes it)
//	faultline-agent probe ADDR:PORT N
//	                             try N TCP connections (300ms each) and print how many succeeded
//
// It is a static binary with no dependencies on the image (which is FROM
// scratch): netfilter is driven over netlink by a pure-Go library.
package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "faultline-agent: %v\n", err)
		os.Exit(1)
	}
}

const usage = "usage: faultline-agent drop [-loss PCT] IP... | heal | list | check | probe ADDR:PORT N | serve [-proxy LISTEN=TARGET] [-disk BACKING=MOUNT] -- SERVER ARGS... | delay D J | disk CMD... | netem"

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "drop":
		loss := 100
		rest := args[1:]
		if len(rest) >= 2 && rest[0] == "-loss" {
			n, err := strconv.Atoi(strings.TrimSuffix(rest[1], "%"))
			if err != nil || n < 1 || n > 100 {
				return fmt.Errorf("-loss %q: want a percentage from 1 to 100", rest[1])
			}
			loss, rest = n, rest[2:]
		}
		var addrs []netip.Addr
		for _, a := range rest {
			ip, err := netip.ParseAddr(a)
			if err != nil || !ip.Is4() {
				return fmt.Errorf("drop %q: want an IPv4 address", a)
			}
			addrs = append(addrs, ip)
		}
		return drop(addrs, loss)
	case "serve":
		return serve(args[1:])
	case "disk":
		if len(args) < 2 {
			return fmt.Errorf("%s", usage)
		}
		out, err := ask(strings.Join(args, " "))
		if err != nil {
			return err
		}
		fmt.Println(out)
		return nil
	case "delay":
		if len(args) != 3 {
			return fmt.Errorf("%s", usage)
		}
		out, err := ask("delay " + args[1] + " " + args[2])
		if err != nil {
			return err
		}
		fmt.Println(out)
		return nil
	case "heal":
		if err := heal(); err != nil {
			return err
		}
		// Also end any delay on the peer proxy, if there is one.
		if _, err := ask("clear"); err != nil && !errors.Is(err, errNoServer) {
			return err
		}
		return nil
	case "list":
		rules, err := list()
		if err != nil {
			return err
		}
		for _, r := range rules {
			fmt.Println(r)
		}
		if out, err := ask("show"); err == nil && out != "delay 0s jitter 0s" {
			fmt.Println(out)
		}
		return nil
	case "probe":
		if len(args) != 3 {
			return fmt.Errorf("%s", usage)
		}
		n, err := strconv.Atoi(args[2])
		if err != nil || n < 1 {
			return fmt.Errorf("probe: %q is not a count", args[2])
		}
		ok := 0
		for range n {
			c, err := net.DialTimeout("tcp", args[1], 300*time.Millisecond)
			if err == nil {
				ok++
				c.Close()
			}
		}
		fmt.Printf("%d/%d\n", ok, n)
		return nil
	case "netem":
		ok, err := netemWorks("eth0")
		if err != nil {
			return err
		}
		if ok {
			fmt.Println("netem: present")
		} else {
			fmt.Println("netem: absent")
		}
		return nil
	case "check":
		if err := drop(nil, 100); err != nil {
			return fmt.Errorf("netfilter does not work here: %w", err)
		}
		return heal()
	}
	return fmt.Errorf("unknown command %q; %s", args[0], usage)
}
