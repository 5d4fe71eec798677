package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Kept is what faultline down needs to remove a cluster that faultline up
// left running (Config.Keep): the run, where it runs, and for local
// members the processes and their folder. It is saved as JSON between the
// two commands.
type Kept struct {
	RunID   string       `json:"run_id"`
	Runtime string       `json:"runtime"`
	Target  string       `json:"target"`
	Members []KeptMember `json:"members"`
	// Dir is a local cluster's folder, with the members' data and logs.
	Dir string `json:"dir,omitempty"`
}

// KeptMember is one member of a kept cluster.
type KeptMember struct {
	Name      string `json:"name"`
	ClientURL string `json:"client_url"`
	// Pid and Start (when it started, as /proc says) name a local
	// member's process, so that down never signals a process that was
	// given the same pid later.
	Pid   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
}

// Endpoints are the members' client URLs, comma-separated, as etcdctl's
// --endpoints takes them.
func (k Kept) Endpoints() string {
	var eps []string
	for _, m := range k.Members {
		eps = append(eps, m.ClientURL)
	}
	return strings.Join(eps, ",")
}

// Kept describes the cluster for DownKept.
func (c *Cluster) Kept() Kept {
	k := Kept{RunID: c.RunID, Runtime: c.Runtime, Target: c.Target.Name}
	if l, ok := c.run.(*local); ok {
		k.Dir = l.dir
	}
	for _, m := range c.Members {
		km := KeptMember{Name: m.Name, ClientURL: m.ClientURL}
		if pid, err := strconv.Atoi(strings.TrimPrefix(m.Instance, "pid ")); err == nil && c.Runtime == Local {
			km.Pid = pid
			km.Start, _ = procStart(pid)
		}
		k.Members = append(k.Members, km)
	}
	return k
}

// DownKept removes a kept cluster: its containers, network and volumes, or
// its processes (asked to stop, killed if they have not after a few
// seconds) and their folder. What is already gone is no error, so down
// after a reboot or a clean just forgets the cluster.
func DownKept(ctx context.Context, k Kept) (Removed, error) {
	switch k.Runtime {
	case Docker:
		docker, err := NewDocker(ctx)
		if err != nil {
			return Removed{}, err
		}
		defer docker.Close()
		return CleanCount(ctx, docker, k.RunID)
	case Local:
		return Removed{}, downLocal(ctx, k)
	}
	return Removed{}, fmt.Errorf("runtime %q: want %s or %s", k.Runtime, Docker, Local)
}

func downLocal(ctx context.Context, k Kept) error {
	// Only ever a folder up made: the state file is the user's to edit,
	// and a wrong path in it must not remove anything else.
	if id, label := parseLocalDir(filepath.Base(k.Dir)); filepath.Dir(k.Dir) != filepath.Clean(os.TempDir()) ||
		!strings.HasPrefix(filepath.Base(k.Dir), localPrefix) || id != k.RunID || !isKept(label) {
		return fmt.Errorf("%q is not the folder of kept local run %s (%s%s-%s-*)", k.Dir, k.RunID, filepath.Join(os.TempDir(), localPrefix), k.RunID, keptOwner)
	}
	var errs []error
	var alive []KeptMember
	for _, m := range k.Members {
		if start, ok := procStart(m.Pid); !ok || start != m.Start {
			continue // gone already
		}
		if err := syscall.Kill(m.Pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("stopping %s (pid %d): %w", m.Name, m.Pid, err))
			continue
		}
		alive = append(alive, m)
	}
	gone := func(m KeptMember) bool { start, ok := procStart(m.Pid); return !ok || start != m.Start }
	deadline := time.Now().Add(5 * time.Second)
	for _, m := range alive {
		for !gone(m) {
			if time.Now().After(deadline) {
				syscall.Kill(m.Pid, syscall.SIGKILL)
			}
			select {
			case <-ctx.Done():
				return errors.Join(append(errs, fmt.Errorf("waiting for %s (pid %d) to exit: %w", m.Name, m.Pid, ctx.Err()))...)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	errs = append(errs, os.RemoveAll(k.Dir))
	return errors.Join(errs...)
}
