package nemesis

import (
	"fmt"
	"slices"
)

// A Grudge says, for each member, which members' packets it drops. The
// partitions here are symmetric: if a drops b, b drops a. Members that
// appear nowhere talk to everyone.
type Grudge map[string][]string

func (g Grudge) cut(a, b string) {
	if !slices.Contains(g[a], b) {
		g[a] = append(g[a], b)
	}
	if !slices.Contains(g[b], a) {
		g[b] = append(g[b], a)
	}
}

// cutBetween cuts every link from one side to the other.
func (g Grudge) cutBetween(side, other []string) {
	for _, a := range side {
		for _, b := range other {
			g.cut(a, b)
		}
	}
}

// Sees returns the members m still talks to, itself included, in the order
// of names.
func (g Grudge) Sees(m string, names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(g[m], n) {
			out = append(out, n)
		}
	}
	return out
}

// majority is the smallest number of members of n that is a quorum.
func majority(n int) int { return n/2 + 1 }

// isolate cuts one member off from all the others.
func isolate(names []string, one string) (Grudge, error) {
	if len(names) < 2 {
		return nil, fmt.Errorf("isolating a member needs at least 2 members, have %d", len(names))
	}
	if !slices.Contains(names, one) {
		return nil, fmt.Errorf("isolating %s: not a member", one)
	}
	g := Grudge{}
	for _, n := range names {
		if n != one {
			g.cut(one, n)
		}
	}
	return g, nil
}

// halves splits the members, in the given order, into a minority (the
// first (n-1)/2) and a majority (the rest), which cannot reach each other:
// with an even n the larger side still has a quorum. Callers shuffle names
// for random halves.
func halves(names []string) (g Grudge, minority []string, err error) {
	if len(names) < 3 {
		return nil, nil, fmt.Errorf("halves need at least 3 members (a minority and a majority), have %d", len(names))
	}
	k := (len(names) - 1) / 2
	g = Grudge{}
	g.cutBetween(names[:k], names[k:])
	return g, slices.Clone(names[:k]), nil
}

// bridge splits the members into two halves that cannot reach each other
// and one member, the bridge, that reaches both: names[(n-1)/2] bridges
// names before it and names after it. With an odd n each half plus the
// bridge is a majority, so two leaders can each believe they have a quorum
// through the bridge.
func bridge(names []string) (g Grudge, bridgeMember string, err error) {
	if len(names) < 3 {
		return nil, "", fmt.Errorf("a bridge needs at least 3 members, have %d", len(names))
	}
	b := (len(names) - 1) / 2
	g = Grudge{}
	g.cutBetween(names[:b], names[b+1:])
	return g, names[b], nil
}

// ring places the members on a ring, in the given order, and lets each
// talk only to its nearest neighbours on both sides: as few as still make
// a majority. Every member then sees a majority, no two members see the
// same one, and no member sees everyone, so every quorum overlaps another
// without any member being in all of them (Jepsen's majorities ring, made
// symmetric: Raft talks over TCP, where a one-way link is no link).
//
// With 3 members no such ring exists (every pair must talk for each to see
// a majority), so ring needs at least 4.
func ring(names []string) (Grudge, error) {
	n := len(names)
	if n < 4 {
		return nil, fmt.Errorf("a majorities ring needs at least 4 members (with %d every member would see every other)", n)
	}
	// Each member sees itself and d neighbours each way: 2d+1 ≥ majority.
	d := majority(n) / 2
	g := Grudge{}
	for i := range n {
		for j := range n {
			dist := min((i-j+n)%n, (j-i+n)%n)
			if dist > d {
				g.cut(names[i], names[j])
			}
		}
	}
	return g, nil
}
