package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	ctlOnce sync.Once
	ctlBin  string
	ctlErr  error
)

// etcdctl builds the real etcdctl from etcd's module (the nested module in
// ./etcdctl) once per test run.
func etcdctl(t *testing.T) string {
	t.Helper()
	ctlOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(file), "etcdctl")
		dir, err := os.MkdirTemp("", "etcdctl-bin")
		if err != nil {
			ctlErr = err
			return
		}
		ctlBin = filepath.Join(dir, "etcdctl")
		cmd := exec.Command("go", "build", "-o", ctlBin, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			ctlErr = fmt.Errorf("build etcdctl: %v\n%s", err, out)
		}
	})
	if ctlErr != nil {
		t.Fatal(ctlErr)
	}
	return ctlBin
}

type ctl struct {
	t   *testing.T
	bin string
	eps string
}

func (c ctl) run(stdin string, args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"--endpoints", c.eps, "--dial-timeout", "5s"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("etcdctl %v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errb.String())
	}
	return out.String()
}

func TestEtcdctl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds etcdctl")
	}
	bin := etcdctl(t)
	c := newCluster(t, 3, nil)
	ctx := testCtx(t)
	c.waitLeader(ctx)
	e := ctl{t: t, bin: bin, eps: strings.Join(c.endpoints(), ",")}

	if out := e.run("", "put", "foo", "bar"); strings.TrimSpace(out) != "OK" {
		t.Errorf("put: %q", out)
	}
	var gr struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
		Kvs []struct {
			Key, Value     []byte
			CreateRevision int64 `json:"create_revision"`
		} `json:"kvs"`
		Count int64 `json:"count"`
	}
	if err := json.Unmarshal([]byte(e.run("", "get", "foo", "-w", "json")), &gr); err != nil {
		t.Fatal(err)
	}
	if gr.Count != 1 || string(gr.Kvs[0].Value) != "bar" || gr.Kvs[0].CreateRevision != 2 {
		t.Errorf("get -w json = %+v", gr)
	}
	e.run("", "put", "foo2", "baz")
	if out := e.run("", "get", "--prefix", "foo"); out != "foo\nbar\nfoo2\nbaz\n" {
		t.Errorf("get --prefix = %q", out)
	}
	if out := e.run("", "del", "foo2"); strings.TrimSpace(out) != "1" {
		t.Errorf("del = %q", out)
	}
	txn := "value(\"foo\") = \"bar\"\n\nput foo baz\n\nput foo nope\n\n"
	if out := e.run(txn, "txn"); !strings.HasPrefix(out, "SUCCESS") {
		t.Errorf("txn = %q", out)
	}
	if out := e.run("", "get", "foo", "--print-value-only"); strings.TrimSpace(out) != "baz" {
		t.Errorf("after txn: %q", out)
	}

	// watch: start it, write, and read the event it prints.
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	w := exec.CommandContext(wctx, bin, "--endpoints", e.eps, "watch", "wkey")
	stdout, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	got := []string{}
	deadline := time.After(15 * time.Second)
	for len(got) < 3 {
		e.run("", "put", "wkey", "wval")
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("watch exited; got %v", got)
			}
			got = append(got, l)
			for len(got) < 3 {
				got = append(got, <-lines)
			}
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			t.Fatalf("watch printed %v", got)
		}
	}
	if got[0] != "PUT" || got[1] != "wkey" || got[2] != "wval" {
		t.Errorf("watch printed %v", got)
	}
	wcancel()
	w.Wait()

	out := e.run("", "lease", "grant", "60")
	var id string
	if _, err := fmt.Sscanf(out, "lease %s granted", &id); err != nil {
		t.Fatalf("lease grant: %q", out)
	}
	e.run("", "put", "leased", "v", "--lease", id)
	if out := e.run("", "lease", "keep-alive", "--once", id); !strings.Contains(out, "keepalived with TTL(60)") {
		t.Errorf("keep-alive: %q", out)
	}
	if out := e.run("", "lease", "timetolive", "--keys", id); !strings.Contains(out, "granted with TTL(60s)") || !strings.Contains(out, "leased") {
		t.Errorf("timetolive: %q", out)
	}

	out = e.run("", "member", "list")
	if n := strings.Count(out, "started"); n != 3 {
		t.Errorf("member list: %q", out)
	}
	out = e.run("", "endpoint", "status", "--cluster", "-w", "table")
	if strings.Count(out, "http://127.0.0.1") != 3 || strings.Count(out, "true") < 1 {
		t.Errorf("endpoint status: %q", out)
	}
	if out := e.run("", "endpoint", "health"); strings.Count(out, "is healthy") != 3 {
		t.Errorf("endpoint health: %q", out)
	}
}
