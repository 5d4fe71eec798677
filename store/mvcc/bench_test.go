package mvcc

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkEncode measures a snapshot of 10000 keys with 5 versions each.
func BenchmarkEncode(b *testing.B) {
	s := New()
	v := []byte(strings.Repeat("v", 256))
	for r := 0; r < 5; r++ {
		for k := 0; k < 10000; k++ {
			t := s.Write()
			t.Put([]byte(fmt.Sprintf("k%d", k)), v, 0)
			t.End()
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		data, err := s.Encode(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
	}
}
