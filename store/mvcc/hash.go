package mvcc

import (
	"cmp"
	"encoding/binary"
	"hash/crc32"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Hash is a CRC-32C over the key versions a read at or above the compaction
// revision, and at or below rev, could observe, following etcd's HashKV: every
// version after the compaction revision up to rev (tombstones included), and,
// of the older versions compaction kept, those still live at rev. The
// versions are hashed in revision order, each as its revision (tagged when a
// tombstone) and its marshalled key-value, so members with the same current
// state but a different past still differ. rev 0 means the current revision.
func (s *Store) Hash(rev int64) (uint32, error) {
	rev, err := s.checkRev(rev)
	if err != nil {
		return 0, err
	}
	type entry struct {
		main, sub int64
		kv        *mvccpb.KeyValue // a tombstone's carries only the key
		tombstone bool
	}
	var es []entry
	s.tree.Ascend(func(h *history) bool {
		for i, v := range h.versions {
			if v.main > rev {
				break
			}
			// Of the versions at or below the compaction revision, etcd
			// hashes only those a compaction at rev would keep, so that the
			// hash does not depend on how far a compaction has got in
			// deleting the rest.
			live := v.kv != nil && (i+1 == len(h.versions) || h.versions[i+1].main > rev)
			if v.main <= s.compactRev && !live {
				continue
			}
			e := entry{main: v.main, sub: v.sub, kv: v.kv}
			if v.kv == nil {
				e.kv, e.tombstone = &mvccpb.KeyValue{Key: []byte(h.key)}, true
			}
			es = append(es, e)
		}
		return true
	})
	slices.SortFunc(es, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.main, b.main), cmp.Compare(a.sub, b.sub))
	})
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	h.Write([]byte("key")) // etcd's bucket name, which it hashes first
	var buf []byte
	for _, e := range es {
		buf = binary.BigEndian.AppendUint64(buf[:0], uint64(e.main))
		buf = append(buf, '_')
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.sub))
		if e.tombstone {
			buf = append(buf, 't')
		}
		data, err := e.kv.Marshal()
		if err != nil {
			return 0, err
		}
		h.Write(buf)
		h.Write(data)
	}
	return h.Sum32(), nil
}
