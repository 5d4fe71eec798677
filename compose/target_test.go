package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	etcd, err := Etcd("v3.5.7")
	if err != nil {
		t.Fatal(err)
	}
	if err := etcd.checkVersion("n1", "3.5.7"); err != nil {
		t.Errorf("the release asked for: %v", err)
	}
	err = etcd.checkVersion("n2", "3.5.17")
	if !errors.Is(err, errWrongRelease) {
		t.Fatalf("3.5.17 for v3.5.7: got %v, want errWrongRelease", err)
	}
	for _, want := range []string{"n2", `"3.5.17"`, "v3.5.7"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if err := Kvnode().checkVersion("n1", "3.6.0"); err != nil {
		t.Errorf("kvnode claims no version, yet: %v", err)
	}
}

func TestEtcdRequirements(t *testing.T) {
	path := filepath.Join(t.TempDir(), "go.mod")
	text := `module go.etcd.io/etcd/server/v3

go 1.26.0

require (
	github.com/coreos/go-semver v0.3.1
	go.etcd.io/bbolt v1.4.3
	go.etcd.io/etcd/api/v3 v3.6.16
	go.etcd.io/raft/v3 v3.6.0
	google.golang.org/grpc v1.79.3
)

require go.etcd.io/etcd/client/v2 v2.305.7 // indirect

replace go.etcd.io/etcd/api/v3 => ../api
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := etcdRequirements(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	want := []module{{"go.etcd.io/bbolt", "v1.4.3"}, {"go.etcd.io/etcd/api/v3", "v3.6.16"},
		{"go.etcd.io/raft/v3", "v3.6.0"}, {"go.etcd.io/etcd/client/v2", "v2.305.7"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestUnraised(t *testing.T) {
	pins := []module{{"go.etcd.io/etcd/server/v3", "v3.5.7"}, {"go.etcd.io/etcd/raft/v3", "v3.5.7"}}
	same := `{"Path": "go.etcd.io/etcd/server/v3", "Version": "v3.5.7"}
{"Path": "go.etcd.io/etcd/raft/v3", "Version": "v3.5.7", "Indirect": true}`
	if err := unraised("v3.5.7", pins, []byte(same)); err != nil {
		t.Errorf("every pin kept: %v", err)
	}
	raised := `{"Path": "go.etcd.io/etcd/server/v3", "Version": "v3.5.7"}
{"Path": "go.etcd.io/etcd/raft/v3", "Version": "v3.5.17", "Indirect": true}`
	err := unraised("v3.5.7", pins, []byte(raised))
	if err == nil {
		t.Fatal("raft raised to v3.5.17 passed")
	}
	for _, want := range []string{"go.etcd.io/etcd/raft/v3 v3.5.7", "v3.5.17"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// TestDefaultPinned keeps compose/targets/etcd/go.mod, which editors and
// go vet read, on the release that is built by default.
func TestDefaultPinned(t *testing.T) {
	reqs, err := etcdRequirements(context.Background(), filepath.Join("targets", "etcd", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(reqs, module{etcdServer, DefaultEtcdVersion}) {
		t.Errorf("targets/etcd/go.mod requires %v, want %s %s", reqs, etcdServer, DefaultEtcdVersion)
	}
}
