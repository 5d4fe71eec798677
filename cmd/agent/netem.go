package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// netemWorks finds out whether the kernel can delay packets with the netem
// queueing discipline: it adds a netem qdisc (with no delay) as the root of
// the member's interface and removes it again at once. A kernel without
// sch_netem answers ENOENT ("unknown qdisc kind"), and a container cannot
// load modules, so that answer is final.
func netemWorks(ifname string) (bool, error) {
	opts := make([]byte, 24) // struct tc_netem_qopt: latency, limit, loss, gap, duplicate, jitter
	binary.NativeEndian.PutUint32(opts[4:], 1000)
	return qdiscWorks(ifname, "netem", opts)
}

// qdiscWorks adds a qdisc of the given kind as the root of ifname and
// removes it again; false means the kernel does not know the kind.
func qdiscWorks(ifname, kind string, opts []byte) (bool, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return false, err
	}
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return false, fmt.Errorf("opening rtnetlink: %w", err)
	}
	defer c.Close()
	const handle = 0x7ffa0000
	tcmsg := func() []byte {
		b := make([]byte, 20) // struct tcmsg
		b[0] = unix.AF_UNSPEC
		binary.NativeEndian.PutUint32(b[4:], uint32(ifi.Index))
		binary.NativeEndian.PutUint32(b[8:], handle)
		binary.NativeEndian.PutUint32(b[12:], 0xffffffff) // TC_H_ROOT
		return b
	}
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.TCA_KIND, Data: append([]byte(kind), 0)},
		{Type: unix.TCA_OPTIONS, Data: opts},
	})
	if err != nil {
		return false, err
	}
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_NEWQDISC, Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl},
		Data:   append(tcmsg(), attrs...),
	})
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("adding a %s qdisc to %s: %w", kind, ifname, err)
	}
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_DELQDISC, Flags: netlink.Request | netlink.Acknowledge},
		Data:   tcmsg(),
	})
	if err != nil {
		return true, fmt.Errorf("%s works, but removing the probe qdisc from %s failed: %w", kind, ifname, err)
	}
	return true, nil
}
