package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/faultline/faultline/store/wal"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// saveSnapshot writes snap durably, replaced atomically: a CRC-32C of the
// rest, the length of the metadata, the metadata, then the data. The data,
// which can be tens of megabytes, is written as it is rather than copied
// into one marshaled message.
func saveSnapshot(path string, snap raftpb.Snapshot) error {
	meta, err := snap.Metadata.Marshal()
	if err != nil {
		return fmt.Errorf("encode snapshot metadata: %w", err)
	}
	head := binary.AppendUvarint(make([]byte, 4, 4+binary.MaxVarintLen64+len(meta)), uint64(len(meta)))
	head = append(head, meta...)
	sum := crc32.Update(crc32.Checksum(head[4:], crcTable), crcTable, snap.Data)
	binary.LittleEndian.PutUint32(head, sum)
	return wal.WriteFileSync(path, head, snap.Data)
}

// loadSnapshot reads the snapshot at path; a missing file is an empty
// snapshot, a damaged one a *wal.DamageError.
func loadSnapshot(path string) (raftpb.Snapshot, error) {
	var snap raftpb.Snapshot
	buf, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return snap, nil
	}
	if err != nil {
		return snap, fmt.Errorf("read snapshot: %w", err)
	}
	// One checksum covers the file: a flip anywhere, or a cut, fails it,
	// and says nothing of where.
	if len(buf) < 4 || crc32.Checksum(buf[4:], crcTable) != binary.LittleEndian.Uint32(buf) {
		return snap, &wal.DamageError{Path: path, Err: errors.New("snapshot: checksum mismatch")}
	}
	n, k := binary.Uvarint(buf[4:])
	if k <= 0 || n > uint64(len(buf)-4-k) {
		return snap, &wal.DamageError{Path: path, Err: errors.New("bad snapshot metadata length")}
	}
	meta := buf[4+k : 4+k+int(n)]
	if err := snap.Metadata.Unmarshal(meta); err != nil {
		return snap, &wal.DamageError{Path: path, Err: fmt.Errorf("decode snapshot metadata: %w", err)}
	}
	snap.Data = buf[4+k+int(n):]
	return snap, nil
}
