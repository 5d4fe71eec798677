package diskfs

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkAppendSync appends put-sized records with an fdatasync after each, as a store's WAL
// does, on the plain backing directory and through a mount, so their ratio is diskfs's cost.
func BenchmarkAppendSync(b *testing.B) {
	run := func(b *testing.B, dir string) {
		f, err := os.OpenFile(filepath.Join(dir, "wal"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		record := make([]byte, 256)
		b.SetBytes(int64(len(record)))
		b.ResetTimer()
		for range b.N {
			if _, err := f.Write(record); err != nil {
				b.Fatal(err)
			}
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("plain", func(b *testing.B) { run(b, b.TempDir()) })
	b.Run("diskfs", func(b *testing.B) { run(b, mountForTest(b, Options{}).mnt) })
}
