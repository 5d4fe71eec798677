// Package membership describes the static members of a kvnode cluster, named
// and identified as etcd does: a member's ID is derived from its peer URLs
// and the cluster token, and the cluster ID from the member IDs.
package membership

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Member is one member of the cluster.
type Member struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string // learned at run time, see the server's publish step
}

// Cluster is the static membership given by --initial-cluster.
type Cluster struct {
	ID      uint64
	Token   string
	Members []Member // sorted by ID
}

// Parse reads an --initial-cluster value such as
// "n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380".
func Parse(initialCluster, token string) (*Cluster, error) {
	byName := map[string][]string{}
	var names []string
	for _, part := range strings.Split(initialCluster, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, u, ok := strings.Cut(part, "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("initial cluster: bad member %q, want name=url", part)
		}
		if _, err := parseURL(u); err != nil {
			return nil, fmt.Errorf("initial cluster: member %s: %w", name, err)
		}
		if _, seen := byName[name]; !seen {
			names = append(names, name)
		}
		byName[name] = append(byName[name], u)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("initial cluster: no members")
	}
	c := &Cluster{Token: token}
	ids := map[uint64]string{}
	for _, name := range names {
		urls := byName[name]
		sort.Strings(urls)
		id := MemberID(urls, token)
		if other, dup := ids[id]; dup {
			return nil, fmt.Errorf("initial cluster: members %s and %s have the same peer URLs", other, name)
		}
		ids[id] = name
		c.Members = append(c.Members, Member{ID: id, Name: name, PeerURLs: urls})
	}
	sort.Slice(c.Members, func(i, j int) bool { return c.Members[i].ID < c.Members[j].ID })
	h := sha1.New()
	for _, m := range c.Members {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], m.ID)
		h.Write(b[:])
	}
	c.ID = binary.BigEndian.Uint64(h.Sum(nil)[:8])
	return c, nil
}

// MemberID derives a member's ID from its sorted peer URLs and the cluster
// token (plus a salt for members added later, so a re-added member never
// reuses a removed member's ID).
func MemberID(peerURLs []string, token string) uint64 {
	h := sha1.New()
	h.Write([]byte(strings.Join(peerURLs, "")))
	h.Write([]byte(token))
	id := binary.BigEndian.Uint64(h.Sum(nil)[:8])
	if id == 0 {
		id = 1 // Raft reserves 0 for "none"
	}
	return id
}

// ByName returns the member called name.
func (c *Cluster) ByName(name string) (Member, bool) {
	for _, m := range c.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// IDs returns every member's ID.
func (c *Cluster) IDs() []uint64 {
	ids := make([]uint64, len(c.Members))
	for i, m := range c.Members {
		ids[i] = m.ID
	}
	return ids
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %q: no host", s)
	}
	return u, nil
}

// SplitURLs parses a comma-separated URL list flag.
func SplitURLs(s string) ([]*url.URL, error) {
	var out []*url.URL
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := parseURL(part)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no URLs in %q", s)
	}
	return out, nil
}
