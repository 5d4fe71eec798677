package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/faultline/faultline/compose"
)

// faultlineBinary builds the faultline command into a temporary folder: up
// must be a process of its own, which exits while its members run on.
func faultlineBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "faultline")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("building faultline: %v\n%s", err, out)
	}
	return bin
}

// TestUpDown boots kvnode clusters with faultline up, local and (when a
// Docker engine answers) in containers: up exits and the members answer
// a put and a get at the endpoints it printed, clean keeps them, and
// faultline down leaves nothing behind (processes, data, state,
// containers, networks, volumes).
func TestUpDown(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the cluster test in -short mode")
	}
	bin := faultlineBinary(t)
	for _, runtime := range []string{compose.Local, compose.Docker} {
		t.Run(runtime, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			var docker *client.Client
			if runtime == compose.Docker {
				var err error
				if docker, err = compose.NewDocker(ctx); err != nil {
					t.Skip(err)
				}
				defer docker.Close()
			}
			results := t.TempDir()
			faultline := func(args ...string) (string, error) {
				cmd := exec.CommandContext(ctx, bin, args...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				return out.String(), err
			}
			out, err := faultline("up", "--runtime", runtime, "--target", "kvnode", "--nodes", "3", "--results", results)
			if err != nil {
				t.Fatalf("faultline up: %v\n%s", err, out)
			}
			b, err := os.ReadFile(upStateFile(results, "up"))
			if err != nil {
				t.Fatalf("up left no state for down: %v\n%s", err, out)
			}
			var st upState
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
			downed := false
			defer func() {
				if !downed {
					compose.DownKept(context.WithoutCancel(ctx), st.Kept)
				}
			}()
			if len(st.Members) != 3 || !strings.Contains(out, "etcdctl --endpoints="+st.Endpoints()+" ") {
				t.Fatalf("up printed no etcdctl command for its 3 members' endpoints %q:\n%s", st.Endpoints(), out)
			}

			// The members outlived up, and answer what etcdctl put and get would.
			cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(st.Endpoints(), ","), DialTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
			defer ocancel()
			if _, err := cli.Put(octx, "/up/hello", "world"); err != nil {
				t.Fatalf("put after up exited: %v", err)
			}
			got, err := cli.Get(octx, "/up/hello")
			if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "world" {
				t.Fatalf("get after up exited: %v %v", got, err)
			}

			// Clean knows the cluster is alive.
			var swept []compose.Swept
			if runtime == compose.Local {
				swept, err = compose.CleanLocal(false, st.RunID)
			} else {
				swept, err = compose.CleanStale(ctx, docker, false, st.RunID)
			}
			if err != nil || len(swept) != 1 || !swept[0].Kept || !strings.Contains(swept[0].Why, "faultline up") {
				t.Fatalf("clean of an up cluster: %+v, %v; want it kept, left running by faultline up", swept, err)
			}
			if out, err := faultline("up", "--runtime", runtime, "--target", "kvnode", "--results", results); err == nil || !strings.Contains(out, "already up") {
				t.Errorf("a second up of the same name: %v\n%s", err, out)
			}

			out, err = faultline("down", "--results", results)
			downed = true
			if err != nil {
				t.Fatalf("faultline down: %v\n%s", err, out)
			}
			if _, err := os.Stat(upStateFile(results, "up")); !os.IsNotExist(err) {
				t.Errorf("down left its state file: %v", err)
			}
			for _, m := range st.Members {
				if m.Pid == 0 {
					continue
				}
				if alive(m.Pid) {
					t.Errorf("member %s (pid %d) still runs after down", m.Name, m.Pid)
				}
			}
			if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "faultline-local-"+st.RunID+"-*")); len(left) > 0 {
				t.Errorf("down left %v behind", left)
			}
			if runtime == compose.Local && st.Dir == "" {
				t.Error("the state of a local cluster names no folder")
			}
			if docker != nil {
				f := client.Filters{}.Add("label", compose.LabelRun+"="+st.RunID)
				ctrs, err1 := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
				nets, err2 := docker.NetworkList(ctx, client.NetworkListOptions{Filters: f})
				vols, err3 := docker.VolumeList(ctx, client.VolumeListOptions{Filters: f})
				if err1 != nil || err2 != nil || err3 != nil {
					t.Fatal(err1, err2, err3)
				}
				if len(ctrs.Items)+len(nets.Items)+len(vols.Items) > 0 {
					t.Errorf("down left %d containers, %d networks, %d volumes", len(ctrs.Items), len(nets.Items), len(vols.Items))
				}
			}
			if out, err := faultline("down", "--results", results); err == nil || !strings.Contains(out, "no cluster named up is up") {
				t.Errorf("a second down: %v\n%s", err, out)
			}
		})
	}
}

// alive says whether process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}
