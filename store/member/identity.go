package member

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/faultline/faultline/store/membership"
	"github.com/faultline/faultline/store/server"
	"github.com/faultline/faultline/store/wal"
)

// identity is who this member is, kept in the data directory: a member
// added at run time has an ID that --initial-cluster cannot derive.
type identity struct {
	ID        uint64
	ClusterID uint64
}

func identityPath(dir string) string { return filepath.Join(dir, "identity.json") }

// identityFile is identity.json: the identity and a checksum of it. A
// flipped bit in a digit still reads as a number, another member's ID.
type identityFile struct {
	ID        uint64
	ClusterID uint64
	CRC32C    uint32 // of ID and ClusterID, little endian
}

func encodeIdentity(id identity) ([]byte, error) {
	sum := crc32.Checksum(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, id.ID), id.ClusterID),
		crc32.MakeTable(crc32.Castagnoli))
	return json.Marshal(identityFile{ID: id.ID, ClusterID: id.ClusterID, CRC32C: sum})
}

// loadIdentity reads the identity file; a damaged one is a *wal.DamageError.
func loadIdentity(dir string) (identity, bool, error) {
	data, err := os.ReadFile(identityPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return identity{}, false, nil
	}
	if err != nil {
		return identity{}, false, fmt.Errorf("read identity: %w", err)
	}
	// The file must be, byte for byte, what saveIdentity writes for the
	// values it holds: that catches a changed value (the checksum no
	// longer matches) and a change JSON would shrug off (a key's case).
	var f identityFile
	json.Unmarshal(data, &f) // what does not parse cannot match below
	id := identity{ID: f.ID, ClusterID: f.ClusterID}
	want, err := encodeIdentity(id)
	if err != nil {
		return identity{}, false, err
	}
	if !bytes.Equal(data, want) {
		return identity{}, false, &wal.DamageError{Path: identityPath(dir), Err: errors.New("identity: checksum mismatch")}
	}
	return id, true, nil
}

func saveIdentity(dir string, id identity) error {
	if err := wal.MkdirAll(dir); err != nil {
		return err
	}
	data, err := encodeIdentity(id)
	if err != nil {
		return err
	}
	return wal.WriteFileSync(identityPath(dir), data)
}

// discover asks the running members who this member is, by its peer URLs.
func discover(ctx context.Context, client *http.Client, cluster *membership.Cluster, self membership.Member) (identity, map[uint64][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	want := slices.Clone(self.PeerURLs)
	sort.Strings(want)
	var last error = errors.New("no other member to ask")
	for {
		for _, m := range cluster.Members {
			if m.Name == self.Name {
				continue
			}
			for _, u := range m.PeerURLs {
				info, err := fetchMembers(ctx, client, u)
				if err != nil {
					last = err
					continue
				}
				for id, urls := range info.Members {
					got := slices.Clone(urls)
					sort.Strings(got)
					if slices.Equal(got, want) {
						return identity{ID: id, ClusterID: info.ClusterID}, info.Members, nil
					}
				}
				last = fmt.Errorf("%s does not list a member with peer URLs %v: add it with MemberAdd first", u, want)
			}
		}
		select {
		case <-ctx.Done():
			return identity{}, nil, fmt.Errorf("joining an existing cluster: %w", last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func fetchMembers(ctx context.Context, client *http.Client, peerURL string) (server.MembersInfo, error) {
	var info server.MembersInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL+"/kvnode/members", nil)
	if err != nil {
		return info, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return info, fmt.Errorf("ask %s for the members: %w", peerURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("ask %s for the members: %s", peerURL, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return info, fmt.Errorf("decode members from %s: %w", peerURL, err)
	}
	return info, nil
}

// adopt rewrites the static cluster with the IDs the running cluster uses.
func adopt(cluster *membership.Cluster, self *membership.Member, id identity, table map[uint64][]string) {
	cluster.ID = id.ClusterID
	self.ID = id.ID
	if table == nil {
		for i := range cluster.Members {
			if cluster.Members[i].Name == self.Name {
				cluster.Members[i].ID = id.ID
			}
		}
		return
	}
	names := map[string]string{}
	for _, m := range cluster.Members {
		for _, u := range m.PeerURLs {
			names[u] = m.Name
		}
	}
	var ms []membership.Member
	for mid, urls := range table {
		name := ""
		if len(urls) > 0 {
			name = names[urls[0]]
		}
		ms = append(ms, membership.Member{ID: mid, Name: name, PeerURLs: urls})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	cluster.Members = ms
}
