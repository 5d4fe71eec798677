package member

import (
	"errors"
	"os"
	"testing"

	"github.com/faultline/faultline/store/wal"
)

// Every flipped bit of the identity file is damage, the ones JSON would
// shrug off (a key's case) or read as another number too.
func TestIdentityFlipsAreDamage(t *testing.T) {
	dir := t.TempDir()
	want := identity{ID: 0x6ab77ef41e5a4aa3, ClusterID: 0x8c5fbc973e2cba}
	if err := saveIdentity(dir, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := loadIdentity(dir)
	if err != nil || !ok || got != want {
		t.Fatalf("load = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	data, err := os.ReadFile(identityPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(data) * 8 {
		flipped := append([]byte(nil), data...)
		flipped[i/8] ^= 1 << (i % 8)
		if err := os.WriteFile(identityPath(dir), flipped, 0o600); err != nil {
			t.Fatal(err)
		}
		id, _, err := loadIdentity(dir)
		if de, ok := errors.AsType[*wal.DamageError](err); !ok || de.Path != identityPath(dir) {
			t.Fatalf("bit %d of byte %d flipped (%q): loaded %+v, %v; want damage", i%8, i/8, flipped, id, err)
		}
	}
}
