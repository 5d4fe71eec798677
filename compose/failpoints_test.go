package compose

import (
	"context"
	"testing"

	"github.com/faultline/faultline/failpoint"
)

// The source of etcd's server module at a release is where its failpoints
// are: v3.6.16 declares 43 (research/gofail.md counted them by grep),
// raftBeforeSave among them, in the raft loop.
func TestEtcdServerSourceFailpoints(t *testing.T) {
	dir, err := EtcdServerSource(context.Background(), "v3.6.16")
	if err != nil {
		t.Fatal(err)
	}
	points, err := failpoint.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) != 43 {
		t.Errorf("etcd v3.6.16 has %d failpoints, want 43", len(points))
	}
	found := false
	for _, p := range points {
		if p.Name == "raftBeforeSave" {
			found = p.File == "etcdserver/raft.go" && p.Type == "struct{}"
		}
	}
	if !found {
		t.Errorf("no raftBeforeSave struct{} in etcdserver/raft.go among %v", points)
	}
	if _, err := EtcdServerSource(context.Background(), "3.6.16"); err == nil {
		t.Error("EtcdServerSource accepted version 3.6.16, which has no leading v")
	}
}
