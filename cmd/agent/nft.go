package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Everything the agent does lives in one table of its own, so that heal is
// "delete the table" and never touches rules anyone else made.
const (
	tableName = "faultline"
	chainName = "input"
)

func table() *nftables.Table {
	return &nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv4}
}

// drop replaces the agent's table with one whose input chain drops
// packets from addrs: every one, or with loss between 1 and 99 that many
// percent of them, at random. It does so in one netlink batch: the old
// drops and the new never both apply, and there is no moment with neither.
func drop(addrs []netip.Addr, loss int) error {
	c, t, err := removal()
	if err != nil {
		return err
	}
	c.AddTable(t)
	ch := c.AddChain(&nftables.Chain{
		Name:     chainName,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookInput,
		Priority: nftables.ChainPriorityFilter,
	})
	for _, a := range addrs {
		ip := a.As4()
		exprs := []expr.Any{
			// ip saddr: 4 bytes at offset 12 of the IPv4 header.
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip[:]},
		}
		if loss > 0 && loss < 100 {
			// numgen random mod 100 < loss, as nft compiles it: the number
			// is in host order, cmp compares bytes, so turn it big-endian.
			exprs = append(exprs,
				&expr.Numgen{Register: 1, Modulus: 100, Type: unix.NFT_NG_RANDOM},
				&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
				&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binary.BigEndian.AppendUint32(nil, uint32(loss))},
			)
		}
		exprs = append(exprs, &expr.Verdict{Kind: expr.VerdictDrop})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing the drop rules: %w", err)
	}
	return nil
}

// removal opens netlink with the removal of the agent's table queued, to
// flush alone or with a new table after it. Adding a table that exists is
// no error, deleting one that does not is: add-then-delete removes the old
// table whether or not it existed.
func removal() (*nftables.Conn, *nftables.Table, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, nil, fmt.Errorf("opening netlink: %w", err)
	}
	t := table()
	c.AddTable(t)
	c.DelTable(t)
	return c, t, nil
}

// heal deletes the agent's table, if there is one.
func heal() error {
	c, _, err := removal()
	if err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("removing the drop rules: %w", err)
	}
	return nil
}

// rule is one address the agent drops packets from, and how many percent
// of them (100: all).
type rule struct {
	addr netip.Addr
	loss int
}

func (r rule) String() string {
	if r.loss == 100 {
		return r.addr.String()
	}
	return fmt.Sprintf("%s %d%%", r.addr, r.loss)
}

// list returns the agent's rules; none when it has no table.
func list() ([]rule, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("opening netlink: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	var t *nftables.Table
	for _, x := range tables {
		if x.Name == tableName {
			t = x
		}
	}
	if t == nil {
		return nil, nil
	}
	rules, err := c.GetRules(t, &nftables.Chain{Name: chainName, Table: t})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing rules: %w", err)
	}
	var out []rule
	for _, r := range rules {
		x := rule{loss: 100}
		for _, e := range r.Exprs {
			if cmp, ok := e.(*expr.Cmp); ok && len(cmp.Data) == 4 {
				switch cmp.Op {
				case expr.CmpOpEq:
					x.addr = netip.AddrFrom4([4]byte(cmp.Data))
				case expr.CmpOpLt:
					x.loss = int(binary.BigEndian.Uint32(cmp.Data))
				}
			}
		}
		out = append(out, x)
	}
	return out, nil
}
