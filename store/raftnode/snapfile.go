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

// saveSnapshot writes snap durably: a CRC-32C followed by the marshaled
// snapshot, replaced atomically.
func saveSnapshot(path string, snap raftpb.Snapshot) error {
	data, err := snap.Marshal()
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	buf := make([]byte, 4+len(data))
	binary.LittleEndian.PutUint32(buf, crc32.Checksum(data, crcTable))
	copy(buf[4:], data)
	return wal.WriteFileSync(path, buf)
}

// loadSnapshot reads the snapshot at path; a missing file is an empty snapshot.
func loadSnapshot(path string) (raftpb.Snapshot, error) {
	var snap raftpb.Snapshot
	buf, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return snap, nil
	}
	if err != nil {
		return snap, fmt.Errorf("read snapshot: %w", err)
	}
	if len(buf) < 4 || crc32.Checksum(buf[4:], crcTable) != binary.LittleEndian.Uint32(buf) {
		return snap, fmt.Errorf("snapshot %s: checksum mismatch", path)
	}
	if err := snap.Unmarshal(buf[4:]); err != nil {
		return snap, fmt.Errorf("decode snapshot %s: %w", path, err)
	}
	return snap, nil
}
