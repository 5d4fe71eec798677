package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
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

// drop replaces the agent's table with one whose input chain drops every
// packet from addrs, in one netlink batch: the old drops and the new never
// both apply, and there is no moment with neither.
func drop(addrs []netip.Addr) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening netlink: %w", err)
	}
	t := table()
	// Adding a table that exists is no error, deleting one that does not
	// is: add-then-delete removes the old table whether or not it existed.
	c.AddTable(t)
	c.DelTable(t)
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
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			// ip saddr: 4 bytes at offset 12 of the IPv4 header.
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip[:]},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing the drop rules: %w", err)
	}
	return nil
}

// heal deletes the agent's table, if there is one.
func heal() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening netlink: %w", err)
	}
	t := table()
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("removing the drop rules: %w", err)
	}
	return nil
}

// list returns the addresses the agent's rules drop; none when it has no
// table.
func list() ([]netip.Addr, error) {
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
	var out []netip.Addr
	for _, r := range rules {
		for _, e := range r.Exprs {
			if cmp, ok := e.(*expr.Cmp); ok && len(cmp.Data) == 4 {
				out = append(out, netip.AddrFrom4([4]byte(cmp.Data)))
			}
		}
	}
	return out, nil
}
