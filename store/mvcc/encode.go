package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

var errShort = errors.New("mvcc: snapshot truncated")

// Encode appends the whole store, history included, to buf for a Raft
// snapshot. It sizes the encoding first and grows buf once: a store holds
// every version of every key, and growing and copying tens of megabytes
// step by step, while the member serves writes, is what made snapshots
// costly.
func (s *Store) Encode(buf []byte) ([]byte, error) {
	size := uvarintLen(uint64(s.rev)) + uvarintLen(uint64(s.compactRev)) + uvarintLen(uint64(s.tree.Len()))
	s.tree.Ascend(func(h *history) bool {
		size += uvarintLen(uint64(len(h.key))) + len(h.key) + uvarintLen(uint64(len(h.versions)))
		for _, v := range h.versions {
			size += uvarintLen(uint64(v.main)) + uvarintLen(uint64(v.sub)) + 1
			if v.kv != nil {
				n := v.kv.Size()
				size += uvarintLen(uint64(n)+1) - 1 + n
			}
		}
		return true
	})
	buf = slices.Grow(buf, size)
	buf = binary.AppendUvarint(buf, uint64(s.rev))
	buf = binary.AppendUvarint(buf, uint64(s.compactRev))
	buf = binary.AppendUvarint(buf, uint64(s.tree.Len()))
	var err error
	s.tree.Ascend(func(h *history) bool {
		buf = binary.AppendUvarint(buf, uint64(len(h.key)))
		buf = append(buf, h.key...)
		buf = binary.AppendUvarint(buf, uint64(len(h.versions)))
		for _, v := range h.versions {
			buf = binary.AppendUvarint(buf, uint64(v.main))
			buf = binary.AppendUvarint(buf, uint64(v.sub))
			if v.kv == nil {
				buf = binary.AppendUvarint(buf, 0)
				continue
			}
			n := v.kv.Size()
			buf = binary.AppendUvarint(buf, uint64(n)+1)
			start := len(buf)
			buf = buf[:start+n]
			if _, err = v.kv.MarshalToSizedBuffer(buf[start:]); err != nil {
				return false
			}
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return buf, nil
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.err = errShort
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

// Decode rebuilds a store from Encode's output.
func Decode(data []byte) (*Store, error) {
	d := &decoder{buf: data}
	s := New()
	s.rev = int64(d.uvarint())
	s.compactRev = int64(d.uvarint())
	nkeys := d.uvarint()
	for i := uint64(0); i < nkeys && d.err == nil; i++ {
		h := &history{key: string(d.bytes(d.uvarint()))}
		nv := d.uvarint()
		if nv > uint64(len(d.buf)) {
			return nil, errShort
		}
		for j := uint64(0); j < nv && d.err == nil; j++ {
			v := version{main: int64(d.uvarint()), sub: int64(d.uvarint())}
			if n := d.uvarint(); n > 0 {
				kv := &mvccpb.KeyValue{}
				if err := kv.Unmarshal(d.bytes(n - 1)); err != nil {
					return nil, fmt.Errorf("mvcc: decode key %q: %w", h.key, err)
				}
				v.kv = kv
			}
			h.versions = append(h.versions, v)
		}
		if len(h.versions) > 0 {
			s.tree.ReplaceOrInsert(h)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	s.rebuildEvents()
	return s, nil
}

// rebuildEvents derives the event log from the key histories.
func (s *Store) rebuildEvents() {
	type ev struct {
		main, sub int64
		e         *mvccpb.Event
	}
	var evs []ev
	s.tree.Ascend(func(h *history) bool {
		for _, v := range h.versions {
			if v.main < s.compactRev {
				continue
			}
			e := &mvccpb.Event{Type: mvccpb.PUT, Kv: v.kv}
			if v.kv == nil {
				e = &mvccpb.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte(h.key), ModRevision: v.main}}
			}
			evs = append(evs, ev{v.main, v.sub, e})
		}
		return true
	})
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].main != evs[j].main {
			return evs[i].main < evs[j].main
		}
		return evs[i].sub < evs[j].sub
	})
	s.events = make([]*mvccpb.Event, len(evs))
	for i, e := range evs {
		s.events[i] = e.e
	}
}
