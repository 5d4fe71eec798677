// Command faultline-agent is the helper faultline places in every member
// image. The harness runs it with docker exec to inject network faults from
// inside the member's network namespace, where the member's own packets
// pass, so the harness's clients (which reach the member from the host
// through the bridge gateway) are never cut off.
//
//	faultline-agent drop IP...   drop every packet arriving from these addresses (replaces earlier drops)
//	faultline-agent heal         remove every rule the agent made
//	faultline-agent list         print the addresses currently dropped, one per line
//	faultline-agent check        create and remove a table: does netfilter work here?
//
// It is a static binary with no dependencies on the image (which is FROM
// scratch): netfilter is driven over netlink by a pure-Go library.
package main

import (
	"fmt"
	"net/netip"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "faultline-agent: %v\n", err)
		os.Exit(1)
	}
}

const usage = "usage: faultline-agent drop IP... | heal | list | check"

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "drop":
		var addrs []netip.Addr
		for _, a := range args[1:] {
			ip, err := netip.ParseAddr(a)
			if err != nil || !ip.Is4() {
				return fmt.Errorf("drop %q: want an IPv4 address", a)
			}
			addrs = append(addrs, ip)
		}
		return drop(addrs)
	case "heal":
		return heal()
	case "list":
		addrs, err := list()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			fmt.Println(a)
		}
		return nil
	case "check":
		if err := drop(nil); err != nil {
			return fmt.Errorf("netfilter does not work here: %w", err)
		}
		return heal()
	}
	return fmt.Errorf("unknown command %q; %s", args[0], usage)
}
