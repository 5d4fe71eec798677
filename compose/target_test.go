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

// TestBuiltinFlags keeps the flags etcd and kvnode get, word for word.
func TestBuiltinFlags(t *testing.T) {
	etcd, err := ParseTarget("etcd", "")
	if err != nil {
		t.Fatal(err)
	}
	kvnode, err := ParseTarget("kvnode", "v3.5.7")
	if err != nil {
		t.Fatal(err)
	}
	f := MemberFlags{Name: "n2", DataDir: "/data/n2", ListenClientURL: "http://0.0.0.0:2379", AdvertiseClientURL: "http://10.0.0.12:2379",
		ListenPeerURL: "http://0.0.0.0:2381", AdvertisePeerURL: "http://10.0.0.12:2380", InitialCluster: "n1=a,n2=b",
		ClusterState: "existing", Token: "run1"}
	want := []string{"--name", "n2", "--data-dir", "/data/n2", "--listen-client-urls", "http://0.0.0.0:2379",
		"--advertise-client-urls", "http://10.0.0.12:2379", "--listen-peer-urls", "http://0.0.0.0:2381",
		"--initial-advertise-peer-urls", "http://10.0.0.12:2380", "--initial-cluster", "n1=a,n2=b",
		"--initial-cluster-state", "existing", "--initial-cluster-token", "run1"}
	for _, target := range []Target{etcd, kvnode} {
		got, err := target.memberArgs(f)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: flags %q, %v; want %q", target.Name, got, err, want)
		}
	}
	if etcd.Version != DefaultEtcdVersion || kvnode.Version != "" {
		t.Errorf("versions %q and %q, want %s and none", etcd.Version, kvnode.Version, DefaultEtcdVersion)
	}
	if etcd.BugFlag != "" || kvnode.BugFlag != "--unsafe-bug" {
		t.Errorf("bug flags %q and %q, want none and --unsafe-bug", etcd.BugFlag, kvnode.BugFlag)
	}
}

func TestParseTargetUnknown(t *testing.T) {
	_, err := ParseTarget("zookeeper", "")
	if err == nil || !strings.Contains(err.Error(), `"zookeeper"`) || !strings.Contains(err.Error(), TargetUsage) {
		t.Errorf("error %v, want one naming zookeeper and saying %s", err, TargetUsage)
	}
	if !strings.HasPrefix(TargetUsage, "etcd, kvnode, or file:PATH") {
		t.Errorf("usage %q does not list the built-ins and target files", TargetUsage)
	}
}

// v3.5 knows the catch-up and compaction batch flags only by their
// experimental names; a cluster's snapshot lag reads either.
func TestEtcdRenamedFlags(t *testing.T) {
	old, err := Etcd("v3.5.35")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--snapshot-count=100", "--snapshot-catchup-entries", "50", "--compaction-batch-limit=10"}
	want := []string{"--snapshot-count=100", "--experimental-snapshot-catchup-entries", "50", "--experimental-compaction-batch-limit=10"}
	if got := old.rename(args); !slices.Equal(got, want) {
		t.Errorf("v3.5.35: %q, want %q", got, want)
	}
	current, _ := Etcd("v3.6.16")
	if got := current.rename(args); !slices.Equal(got, args) {
		t.Errorf("v3.6.16 renamed %q to %q", args, got)
	}
	for _, c := range []struct {
		t     Target
		extra []string
		lag   uint64
	}{
		{current, nil, 15000},
		{old, nil, 105000},
		{Kvnode(), args, 150},
		{old, []string{"--snapshot-count", "200", "--experimental-snapshot-catchup-entries=20"}, 220},
		{Target{Name: "mystore"}, args[:1], 0},
		{Target{Name: "mystore"}, args, 150},
	} {
		if got := (&Cluster{Target: c.t, extra: c.extra}).SnapshotLag(); got != c.lag {
			t.Errorf("%s %q: snapshot lag %d, want %d", c.t.Name, c.extra, got, c.lag)
		}
	}
}

// TestCheckMemberFlag refuses extra member flags that are not one --word,
// and the flags the harness sets itself however the target spells them.
func TestCheckMemberFlag(t *testing.T) {
	other := Target{Name: "other", Flags: []string{"-name={{.Name}}", "-dir", "{{.DataDir}}"}, BugFlag: "-inject"}
	for _, tc := range []struct {
		target  Target
		flag    string
		wantErr string // empty: accepted
	}{
		{Kvnode(), "--snapshot-count=50", ""},
		{Kvnode(), "--enable-pprof", ""},
		{Kvnode(), "--snapshot-count", ""}, // its value is its own business
		{Kvnode(), "-snapshot-count=50", "want one word beginning with --"},
		{Kvnode(), "--", "want one word beginning with --"},
		{Kvnode(), "50", "want one word beginning with --"},
		{Kvnode(), "--listen-client-urls=http://x", "faultline sets --listen-client-urls itself"},
		{Kvnode(), "--initial-cluster-token", "faultline sets --initial-cluster-token itself"},
		{Kvnode(), "--unsafe-bug=stale-read", "faultline sets --unsafe-bug itself; use --unsafe-bug NAME"},
		{other, "--name=x", "faultline sets -name itself"},
		{other, "--dir=/x", "faultline sets -dir itself"},
		{other, "--inject=x", "faultline sets -inject itself; use --unsafe-bug NAME"},
		{other, "--name-prefix=x", ""},
	} {
		err := tc.target.CheckMemberFlag(tc.flag)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s %q: %v", tc.target.Name, tc.flag, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s %q: error %v, want one saying %q", tc.target.Name, tc.flag, err, tc.wantErr)
		}
	}
}
