package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

var (
	buildOnce sync.Once
	kvnodeBin string
	buildErr  error
)

// binary builds cmd/kvnode once per test run, statically, as the images do.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kvnode-bin")
		if err != nil {
			buildErr = err
			return
		}
		kvnodeBin = filepath.Join(dir, "kvnode")
		cmd := exec.Command("go", "build", "-o", kvnodeBin, "github.com/faultline/faultline/cmd/kvnode")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build kvnode: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return kvnodeBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, bin := range []string{kvnodeBin, ctlBin} {
		if bin != "" {
			os.RemoveAll(filepath.Dir(bin))
		}
	}
	os.Exit(code)
}

// procCluster is n kvnode processes on loopback.
type procCluster struct {
	t     *testing.T
	args  [][]string
	urls  []string
	dirs  []string // data directories
	logs  []string
	procs []*exec.Cmd
	waits []chan struct{}
}

func newProcCluster(t *testing.T, n int, extra ...string) *procCluster {
	bin := binary(t)
	ports := freePorts(t, 2*n)
	var initial []string
	for i := 0; i < n; i++ {
		initial = append(initial, fmt.Sprintf("n%d=http://127.0.0.1:%d", i, ports[2*i+1]))
	}
	pc := &procCluster{t: t, procs: make([]*exec.Cmd, n), waits: make([]chan struct{}, n)}
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		args := []string{bin,
			"--name", fmt.Sprintf("n%d", i),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("n%d", i)),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", "proc-test",
			"--heartbeat-interval", "25", "--election-timeout", "250",
		}
		pc.args = append(pc.args, append(args, extra...))
		pc.urls = append(pc.urls, client)
		pc.dirs = append(pc.dirs, filepath.Join(dir, fmt.Sprintf("n%d", i)))
		pc.logs = append(pc.logs, filepath.Join(dir, fmt.Sprintf("n%d.log", i)))
		pc.start(i)
	}
	t.Cleanup(func() {
		for i := range pc.procs {
			pc.kill(i)
		}
		if t.Failed() {
			for _, l := range pc.logs {
				data, _ := os.ReadFile(l)
				lines := strings.Split(string(data), "\n")
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("--- %s (tail)\n%s", l, strings.Join(lines, "\n"))
			}
		}
	})
	return pc
}

func (pc *procCluster) start(i int) {
	pc.t.Helper()
	f, err := os.OpenFile(pc.logs[i], os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		pc.t.Fatal(err)
	}
	cmd := exec.Command(pc.args[i][0], pc.args[i][1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(done)
	}()
	pc.procs[i], pc.waits[i] = cmd, done
}

// kill SIGKILLs member i and waits for it to be gone.
func (pc *procCluster) kill(i int) {
	if pc.procs[i] == nil {
		return
	}
	pc.procs[i].Process.Signal(syscall.SIGKILL)
	<-pc.waits[i]
	pc.procs[i] = nil
}

// leader asks every running member for Status, as the harness does, and
// returns the index of the member all of them name as leader.
func (pc *procCluster) leader(ctx context.Context) int {
	pc.t.Helper()
	l, err := pc.tryLeader(ctx)
	if err != nil {
		pc.t.Fatal(err)
	}
	return l
}

// exited waits for member i's process to exit on its own and returns its
// exit code.
func (pc *procCluster) exited(ctx context.Context, i int) int {
	pc.t.Helper()
	select {
	case <-pc.waits[i]:
	case <-ctx.Done():
		pc.t.Fatalf("member %d did not exit: %v", i, ctx.Err())
	}
	code := pc.procs[i].ProcessState.ExitCode()
	pc.procs[i] = nil
	return code
}

func (pc *procCluster) tryLeader(ctx context.Context) (int, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: pc.urls, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return -1, err
	}
	defer cli.Close()
	for {
		leader, lead, agree := -1, uint64(0), true
		for i, u := range pc.urls {
			if pc.procs[i] == nil {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			st, err := cli.Status(sctx, u)
			cancel()
			if err != nil || st.Leader == 0 || (lead != 0 && lead != st.Leader) {
				agree = false
				break
			}
			lead = st.Leader
			if st.Leader == st.Header.MemberId {
				leader = i
			}
		}
		if agree && leader >= 0 {
			return leader, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("no agreed leader: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestLeaderKillRestart SIGKILLs the leader repeatedly while clients write,
// restarts it with its data, and checks that every acknowledged write
// survives on every member.
func TestLeaderKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	pc := newProcCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pc.leader(ctx)

	acked := runWriters(ctx, t, pc.urls, 4, func(stop <-chan struct{}) {
		for round := 0; round < 3; round++ {
			l := pc.leader(ctx)
			time.Sleep(150 * time.Millisecond)
			pc.kill(l)
			pc.leader(ctx) // the survivors elect a new one
			time.Sleep(150 * time.Millisecond)
			pc.start(l)
			pc.leader(ctx)
		}
	})
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	verifyAcked(ctx, t, pc.urls, acked)
}

// runWriters runs n writers doing unique puts and register-style CAS txns
// until during returns, and returns the keys of acknowledged puts with
// their values.
func runWriters(ctx context.Context, t *testing.T, urls []string, n int, during func(stop <-chan struct{})) map[string]string {
	t.Helper()
	var mu sync.Mutex
	acked := map[string]string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{urls[w%len(urls)]}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cli.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d/%d", w, i)
				octx, cancel := context.WithTimeout(ctx, time.Second)
				_, err := cli.Put(octx, key, key)
				if err == nil {
					mu.Lock()
					acked[key] = key
					mu.Unlock()
				}
				reg := fmt.Sprintf("reg%d", w%2)
				gr, gerr := cli.Get(octx, reg)
				if gerr == nil {
					var old string
					cmp := clientv3.Compare(clientv3.CreateRevision(reg), "=", 0)
					if len(gr.Kvs) > 0 {
						old = string(gr.Kvs[0].Value)
						cmp = clientv3.Compare(clientv3.Value(reg), "=", old)
					}
					cli.Txn(octx).If(cmp).Then(clientv3.OpPut(reg, key)).Commit()
				}
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	during(stop)
	close(stop)
	wg.Wait()
	return acked
}

func verifyAcked(ctx context.Context, t *testing.T, urls []string, acked map[string]string) {
	t.Helper()
	for _, u := range urls {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{u}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		var gr *clientv3.GetResponse
		for {
			gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			gr, err = cli.Get(gctx, "w", clientv3.WithPrefix())
			cancel()
			if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "Unavailable") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		cli.Close()
		if err != nil {
			t.Fatalf("read from %s: %v", u, err)
		}
		have := map[string]string{}
		for _, kv := range gr.Kvs {
			have[string(kv.Key)] = string(kv.Value)
		}
		lost := 0
		for k, v := range acked {
			if have[k] != v {
				lost++
				if lost < 5 {
					t.Errorf("member %s lost acknowledged write %s", u, k)
				}
			}
		}
		if lost > 0 {
			t.Errorf("member %s lost %d of %d acknowledged writes", u, lost, len(acked))
		}
	}
	t.Logf("%d acknowledged writes all present on %d members", len(acked), len(urls))
}

// killAllLoop SIGKILLs every member at once (and, in between, random single
// members) while writers run, restarting them each time.
func killAllLoop(ctx context.Context, pc *procCluster, rounds int) {
	for r := 0; r < rounds; r++ {
		pc.leader(ctx)
		time.Sleep(300 * time.Millisecond)
		pc.kill(r % len(pc.procs))
		time.Sleep(100 * time.Millisecond)
		pc.start(r % len(pc.procs))
		time.Sleep(300 * time.Millisecond)
		for i := range pc.procs {
			pc.kill(i)
		}
		for i := range pc.procs {
			pc.start(i)
		}
	}
	pc.leader(ctx)
}

// TestDurabilityKillAll: acknowledged puts survive any member, or all of
// them, being SIGKILLed at any moment.
func TestDurabilityKillAll(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	pc := newProcCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pc.leader(ctx)
	acked := runWriters(ctx, t, pc.urls, 6, func(stop <-chan struct{}) { killAllLoop(ctx, pc, 3) })
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	verifyAcked(ctx, t, pc.urls, acked)
}

// TestReadIndexDuringLeaderChange: while the leader is killed and restarted,
// a linearizable read that starts after a write was acknowledged never
// returns an older value, whichever member serves it.
func TestReadIndexDuringLeaderChange(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	pc := newProcCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pc.leader(ctx)
	wcli, err := clientv3.New(clientv3.Config{Endpoints: pc.urls, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer wcli.Close()
	var acked atomic.Int64 // highest value known to be written
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the writer counts up
		defer wg.Done()
		for n := int64(1); ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			octx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := wcli.Put(octx, "counter", fmt.Sprint(n))
			cancel()
			if err == nil {
				acked.Store(n)
			}
		}
	}()
	var reads, stale atomic.Int64
	for i := range pc.urls {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{pc.urls[i]}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		wg.Add(1)
		go func() { // one reader pinned to each member
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				floor := acked.Load()
				octx, cancel := context.WithTimeout(ctx, time.Second)
				gr, err := cli.Get(octx, "counter")
				cancel()
				if err != nil || len(gr.Kvs) == 0 {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				var v int64
				fmt.Sscan(string(gr.Kvs[0].Value), &v)
				reads.Add(1)
				if v < floor {
					stale.Add(1)
					t.Errorf("member %d returned %d after %d was acknowledged", i, v, floor)
				}
			}
		}()
	}
	for round := 0; round < 3; round++ {
		l := pc.leader(ctx)
		time.Sleep(200 * time.Millisecond)
		pc.kill(l)
		pc.leader(ctx)
		time.Sleep(200 * time.Millisecond)
		pc.start(l)
	}
	pc.leader(ctx)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d linearizable reads, %d stale; last acknowledged write %d", reads.Load(), stale.Load(), acked.Load())
	if reads.Load() == 0 {
		t.Fatal("no read succeeded")
	}
}
