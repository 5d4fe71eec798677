package transport

import (
	"encoding/binary"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func encode(msgs []raftpb.Message) []byte {
	var buf []byte
	for _, m := range msgs {
		data, _ := m.Marshal()
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(data)))
		buf = append(buf, data...)
	}
	return buf
}

func TestDecodeBatch(t *testing.T) {
	in := []raftpb.Message{{Type: raftpb.MsgApp, To: 2, From: 1, Term: 3, Entries: []raftpb.Entry{{Index: 1, Term: 3, Data: []byte("x")}}}, {Type: raftpb.MsgHeartbeat, To: 2}}
	out, err := decodeBatch(encode(in))
	if err != nil || len(out) != 2 || out[0].Entries[0].Index != 1 || out[1].Type != raftpb.MsgHeartbeat {
		t.Fatalf("decode = %+v, %v", out, err)
	}
	if _, err := decodeBatch(encode(in)[:10]); err == nil {
		t.Errorf("truncated batch accepted")
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encode([]raftpb.Message{{Type: raftpb.MsgApp, To: 2}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeBatch(data) // must not panic
	})
}
