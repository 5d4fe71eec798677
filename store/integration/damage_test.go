package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/faultline/faultline/damage"
)

// stoppedFollower starts a 3-member process cluster that snapshots often,
// writes to it, waits until a follower has a snapshot file, SIGKILLs that
// follower and returns it and the acknowledged writes.
func stoppedFollower(ctx context.Context, t *testing.T) (*procCluster, int, map[string]string) {
	t.Helper()
	pc := newProcCluster(t, 3, "--snapshot-count", "50", "--snapshot-catchup-entries", "10")
	v := (pc.leader(ctx) + 1) % 3
	acked := putAll(ctx, t, pc.urls, "w/before/", 200)
	snap := filepath.Join(pc.dirs[v], "member", "snapshot.bin")
	for {
		if _, err := os.Stat(snap); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("member %d never wrote %s", v, snap)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Writes after the snapshot, so the log holds records past it.
	for k, val := range putAll(ctx, t, pc.urls, "w/logged/", 20) {
		acked[k] = val
	}
	pc.kill(v)
	return pc, v, acked
}

// putAll puts n keys, prefix0 … prefix(n-1), through urls and returns them.
func putAll(ctx context.Context, t *testing.T, urls []string, prefix string, n int) map[string]string {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: urls, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	acked := map[string]string{}
	for i := range n {
		k := fmt.Sprintf("%s%d", prefix, i)
		if _, err := cli.Put(ctx, k, k); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		acked[k] = k
	}
	return acked
}

// lastRevision is the cluster's revision, read through urls.
func lastRevision(ctx context.Context, t *testing.T, urls []string) int64 {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: urls, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	gr, err := cli.Get(ctx, "w/")
	if err != nil {
		t.Fatal(err)
	}
	return gr.Header.Revision
}

func without(list []string, i int) []string {
	return append(append([]string(nil), list[:i]...), list[i+1:]...)
}

var damagedLine = regexp.MustCompile(`^kvnode: data dir damaged: (\S+), offset (\d+): .*; this member must be replaced: wipe its data dir and add it again$`)

// A member whose WAL, snapshot or identity has a flipped bit, or whose WAL
// was cut short, refuses to start: it exits non-zero with one line naming
// the file, where in it, and that the member must be replaced, and never
// says it started. The other two serve on. Replaced as the line says, the
// member catches up: all three hash alike and hold every acknowledged
// write.
func TestDamageRefusedAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	tests := []struct {
		name   string
		file   string
		damage func(string, []string, *rand.Rand) (damage.Done, error)
		reason string
		// offset says whether off is where the damage was reported
		// for what was done.
		offset func(off int64, d damage.Done) bool
	}{
		// The WAL names the record the flipped byte is in; a file under
		// one checksum cannot say where.
		{"flipped wal", "member/wal/wal.log", damage.Flip, "wal: corrupt record",
			func(off int64, d damage.Done) bool { return off <= d.Offset && d.Offset-off < 4096 }},
		{"flipped snapshot", "member/snapshot.bin", damage.Flip, "snapshot: checksum mismatch",
			func(off int64, d damage.Done) bool { return off == 0 }},
		{"flipped identity", "member/identity.json", damage.Flip, "identity: checksum mismatch",
			func(off int64, d damage.Done) bool { return off == 0 }},
		// What was cut was acknowledged: Raft cannot mend a member
		// that lost it.
		{"cut wal", "member/wal/wal.log", damage.Truncate, "the file is cut short",
			func(off int64, d damage.Done) bool { return off == d.NewSize }},
	}
	for seed, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			pc, v, acked := stoppedFollower(ctx, t)
			d, err := tt.damage(pc.dirs[v], []string{tt.file}, rand.New(rand.NewPCG(uint64(seed), 1)))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("member %d: %v", v, d)
			before, err := os.Stat(pc.logs[v])
			if err != nil {
				t.Fatal(err)
			}
			pc.start(v)
			if code := pc.exited(ctx, v); code == 0 {
				t.Errorf("member %d exited 0 on a damaged %s", v, tt.file)
			}
			data, err := os.ReadFile(pc.logs[v])
			if err != nil {
				t.Fatal(err)
			}
			out := string(data[before.Size():])
			if strings.Contains(out, "kvnode member started") {
				t.Errorf("member %d started from a damaged %s", v, tt.file)
			}
			var found []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "damaged") {
					found = append(found, l)
				}
			}
			if len(found) != 1 {
				t.Fatalf("want one line saying the data dir is damaged, got %q", found)
			}
			m := damagedLine.FindStringSubmatch(found[0])
			if m == nil || m[1] != filepath.Join(pc.dirs[v], d.Path) || !strings.Contains(found[0], tt.reason) {
				t.Fatalf("%q does not name %s and %q", found[0], filepath.Join(pc.dirs[v], d.Path), tt.reason)
			}
			if off, _ := strconv.ParseInt(m[2], 10, 64); !tt.offset(off, d) {
				t.Errorf("damage reported at offset %d after %v", off, d)
			}

			live := without(pc.urls, v)
			for k, val := range putAll(ctx, t, live, "w/without/", 20) {
				acked[k] = val
			}
			verifyAcked(ctx, t, live, acked)

			pc.replace(ctx, v)
			for k, val := range putAll(ctx, t, pc.urls, "w/replaced/", 20) {
				acked[k] = val
			}
			sameHashes(ctx, t, pc.urls, lastRevision(ctx, t, pc.urls))
			verifyAcked(ctx, t, pc.urls, acked)
		})
	}
}

// replace does what a damaged member asks for: it removes member v from
// the cluster, wipes its data dir, adds it back and starts it empty with
// --initial-cluster-state existing, then waits for all to agree on a
// leader.
func (pc *procCluster) replace(ctx context.Context, v int) {
	pc.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: without(pc.urls, v), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		pc.t.Fatal(err)
	}
	defer cli.Close()
	peer := *flagValue(pc.args[v], "--initial-advertise-peer-urls")
	ml, err := cli.MemberList(ctx)
	if err != nil {
		pc.t.Fatal(err)
	}
	for _, m := range ml.Members {
		if slices.Contains(m.PeerURLs, peer) {
			if _, err := cli.MemberRemove(ctx, m.ID); err != nil {
				pc.t.Fatalf("remove member %d: %v", v, err)
			}
		}
	}
	if err := os.RemoveAll(pc.dirs[v]); err != nil {
		pc.t.Fatal(err)
	}
	if _, err := cli.MemberAdd(ctx, []string{peer}); err != nil {
		pc.t.Fatalf("add member %d: %v", v, err)
	}
	*flagValue(pc.args[v], "--initial-cluster-state") = "existing"
	pc.start(v)
	pc.leader(ctx)
}

// flagValue is the word after flag in args.
func flagValue(args []string, flag string) *string {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		panic("no " + flag + " in " + strings.Join(args, " "))
	}
	return &args[i+1]
}
