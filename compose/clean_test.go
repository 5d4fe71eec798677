package compose

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// exited returns the owner label of a harness that has exited: a process
// this test started and reaped.
func exited(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	me := harness()
	return owner{host: me.host, pid: cmd.Process.Pid, start: me.start}.String()
}

func TestLive(t *testing.T) {
	me := harness()
	if me.start == 0 {
		t.Fatalf("no start time read for this process: %+v", me)
	}
	for _, tc := range []struct {
		name, label string
		want        bool
		why         string
	}{
		{"this process", me.String(), true, "still running"},
		{"exited", exited(t), false, "has exited"},
		{"pid reused", owner{me.host, me.pid, me.start + 1}.String(), false, "another process"},
		{"no label", "", false, "counted as dead"},
		{"unreadable label", "1234@" + me.host, false, "counted as dead"},
		{"another host", owner{"elsewhere", 1, 1}.String(), true, "host elsewhere"},
		{"kept by faultline up", ownerOf(true), true, "left running by faultline up"},
	} {
		got, why := live(tc.label)
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: live(%q) = %v, %q; want %v, %q", tc.name, tc.label, got, why, tc.want, tc.why)
		}
	}
	if keep, why := decide(me.String(), true); keep || !strings.Contains(why, "--all") {
		t.Errorf("decide(this process, all) = %v, %q; want removed because of --all", keep, why)
	}
}

// TestProcStartOddName reads the start of a process whose name holds a
// parenthesis and what looks like a zombie's state: fields are counted
// after the last ')'.
func TestProcStartOddName(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	odd := filepath.Join(t.TempDir(), "x) Z 1 (y")
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(odd, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(odd, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if start, ok := procStart(cmd.Process.Pid); !ok || start == 0 {
		t.Errorf("procStart of a running %q = %d, %v", filepath.Base(odd), start, ok)
	}
}

// TestProcStartZombie: a harness that exited but was not reaped yet is gone.
func TestProcStartZombie(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	stat := fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)
	for {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), ") Z ") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := procStart(cmd.Process.Pid); ok {
		t.Error("an exited, unreaped process was taken for a running one")
	}
}

// TestCleanStale boots a one-member run (owned by this test) and makes
// the leftovers of a run whose harness exited and of one from before
// owners were recorded: clean must remove the dead ones and leave the
// live run untouched and serving.
func TestCleanStale(t *testing.T) {
	cli := docker(t)
	target, ref := etcdImage(t, cli, "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	stamp := time.Now().UnixNano()
	liveID, deadID, oldID := fmt.Sprintf("test%d-live", stamp), fmt.Sprintf("test%d-dead", stamp), fmt.Sprintf("test%d-old", stamp)
	c, err := Up(ctx, cli, Config{RunID: liveID, Target: target, Image: ref, Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Down(context.Background())

	dead := map[string]string{LabelRun: deadID, LabelOwner: exited(t)}
	if _, err := cli.NetworkCreate(ctx, "faultline-"+deadID, client.NetworkCreateOptions{Labels: dead}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "faultline-" + deadID, Labels: dead}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: "faultline-" + deadID, Config: &container.Config{Image: ref, Labels: dead},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "faultline-" + oldID, Labels: map[string]string{LabelRun: oldID}}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, id := range []string{deadID, oldID} {
			CleanCount(context.Background(), cli, id)
		}
	}()

	runs, err := CleanStale(ctx, cli, false, liveID, deadID, oldID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Swept{}
	for _, s := range runs {
		got[s.RunID] = s
	}
	if s := got[liveID]; !s.Kept || s.Removed != (Removed{}) || !strings.Contains(s.Why, "still running") {
		t.Errorf("live run: %+v, want kept because its harness still runs", s)
	}
	if s := got[deadID]; s.Kept || s.Removed != (Removed{1, 1, 1}) || !strings.Contains(s.Why, "has exited") {
		t.Errorf("dead run: %+v, want its container, network and volume removed", s)
	}
	if s := got[oldID]; s.Kept || s.Volumes != 1 || !strings.Contains(s.Why, "no owner") {
		t.Errorf("run without an owner: %+v, want its volume removed", s)
	}
	if len(runs) != 3 {
		t.Errorf("found %d runs, want the 3 named: %+v", len(runs), runs)
	}

	ctrs, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", LabelRun+"="+liveID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs.Items) != 1 {
		t.Fatalf("the live run has %d running containers after clean, want 1", len(ctrs.Items))
	}
	if err := c.WaitReady(ctx, 10*time.Second); err != nil {
		t.Errorf("the live run's member no longer serves: %v", err)
	}

	// Its own teardown still removes everything of it.
	if err := c.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if left, err := CleanCount(ctx, cli, liveID); err != nil || left != (Removed{}) {
		t.Errorf("Down left %+v behind (%v)", left, err)
	}
}
