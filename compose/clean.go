package compose

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/client"
)

// NewRunID returns a fresh run id for the LabelRun label.
func NewRunID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// owner is the harness process that made a run: its host, its pid, and
// when it started, so that a process given the same pid later is not
// taken for it.
type owner struct {
	host  string
	pid   int
	start uint64 // clock ticks after boot, field 22 of /proc/<pid>/stat
}

// String is the LabelOwner value: <pid>.<start>@<host>.
func (o owner) String() string { return o.pidStart() + "@" + o.host }

// pidStart is the part of the owner a local run's folder name carries.
func (o owner) pidStart() string { return fmt.Sprintf("%d.%d", o.pid, o.start) }

func parseOwner(s string) (owner, bool) {
	ps, host, ok := strings.Cut(s, "@")
	if !ok {
		return owner{}, false
	}
	p, st, ok := strings.Cut(ps, ".")
	if !ok {
		return owner{}, false
	}
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseUint(st, 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return owner{}, false
	}
	return owner{host: host, pid: pid, start: start}, true
}

// keptOwner is the owner of a cluster faultline up left running: no
// process, but the user, until faultline down.
const keptOwner = "up"

// ownerOf is the owner label of what this process makes: itself, or, for
// a cluster kept running (Config.Keep), keptOwner on this host.
func ownerOf(keep bool) string {
	if keep {
		return keptOwner + "@" + harness().host
	}
	return harness().String()
}

// isKept says whether an owner label is that of a cluster faultline up left
// running.
func isKept(label string) bool { return strings.HasPrefix(label, keptOwner+"@") }

// keptWhy is why clean keeps such a cluster.
const keptWhy = "left running by faultline up; faultline down removes it"

// harness is this process as the owner of what it makes.
var harness = sync.OnceValue(func() owner {
	host, _ := os.Hostname() // on Linux it cannot fail; "" is still one host
	start, _ := procStart(os.Getpid())
	return owner{host: host, pid: os.Getpid(), start: start}
})

// procStart returns when process pid started, and false when there is no
// such process or it has exited and only waits to be reaped.
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces and parentheses
	// itself; the fields after the last ')' start with the state (field 3).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return start, err == nil
}

// live says whether the harness named by an owner label still runs, or
// runs on another host where this one cannot look, and why it thinks so.
func live(label string) (bool, string) {
	if isKept(label) {
		return true, keptWhy
	}
	o, ok := parseOwner(label)
	if !ok {
		return false, "no owner recorded (an older faultline made it): counted as dead"
	}
	if o.host != harness().host {
		return true, fmt.Sprintf("harness pid %d runs on host %s, which this one cannot check", o.pid, o.host)
	}
	start, running := procStart(o.pid)
	switch {
	case !running:
		return false, fmt.Sprintf("harness pid %d has exited", o.pid)
	case start != o.start:
		return false, fmt.Sprintf("harness pid %d has exited (the pid now belongs to another process)", o.pid)
	}
	return true, fmt.Sprintf("harness pid %d still running", o.pid)
}

// decide says whether a run owned as the label says stays, and why: it
// stays while its harness is live, unless all says to remove every run.
func decide(label string, all bool) (keep bool, why string) {
	keep, why = live(label)
	if keep && all {
		return false, why + "; removed anyway (--all)"
	}
	return keep, why
}

// Removed counts what was removed.
type Removed struct {
	Containers, Networks, Volumes int
}

// Swept is one run that CleanStale or CleanLocal found, and what became of it.
type Swept struct {
	RunID string
	Dir   string // a local run's folder; empty for a run in the Docker engine
	Kept  bool
	Why   string // e.g. "harness pid 4242 still running"
	Removed
}

// Clean removes every container, network and volume of the run, whether
// its harness runs or not: a run's teardown calls it. Built images stay:
// they are a cache keyed by their inputs.
func Clean(ctx context.Context, docker *client.Client, runID string) error {
	_, err := CleanCount(ctx, docker, runID)
	return err
}

// CleanCount is Clean that also says how much it removed.
func CleanCount(ctx context.Context, docker *client.Client, runID string) (Removed, error) {
	filter := client.Filters{}.Add("label", LabelRun+"="+runID)
	var n Removed
	var errs []error

	ctrs, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return n, fmt.Errorf("listing containers: %w", err)
	}
	// All at once, as they were started: every run ends here, and the
	// engine takes a good part of a second to remove each.
	failed := make([][]error, len(ctrs.Items))
	gone := make([]bool, len(ctrs.Items))
	var wg sync.WaitGroup
	for i, ctr := range ctrs.Items {
		wg.Go(func() {
			if ctr.Labels[LabelDisk] != "" {
				if err := crashFirst(ctx, docker, ctr.ID); err != nil {
					failed[i] = append(failed[i], fmt.Errorf("stopping container %s: %w", ctr.ID[:12], err))
				}
			}
			_, err := docker.ContainerRemove(ctx, ctr.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil {
				failed[i] = append(failed[i], fmt.Errorf("removing container %s: %w", ctr.ID[:12], err))
			}
			gone[i] = err == nil
		})
	}
	wg.Wait()
	for i := range ctrs.Items {
		errs = append(errs, failed[i]...)
		if gone[i] {
			n.Containers++
		}
	}

	nets, err := docker.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing networks: %w", err))
	} else {
		for _, nw := range nets.Items {
			if _, err := docker.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("removing network %s: %w", nw.Name, err))
				continue
			}
			n.Networks++
		}
	}

	vols, err := docker.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing volumes: %w", err))
	} else {
		for _, v := range vols.Items {
			if _, err := docker.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
				errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
				continue
			}
			n.Volumes++
		}
	}
	return n, errors.Join(errs...)
}

// CleanStale removes the containers, networks and volumes of every run
// whose harness is gone, of the runs named (all runs when none is), and
// keeps those of live runs; with all it removes live runs' too. It says
// what it did with each run it found, in the order it found them.
func CleanStale(ctx context.Context, docker *client.Client, all bool, runIDs ...string) ([]Swept, error) {
	filter := client.Filters{}.Add("label", LabelRun)
	ctrs, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	nets, err := docker.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("listing networks: %w", err)
	}
	vols, err := docker.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("listing volumes: %w", err)
	}
	var labels []map[string]string
	for _, c := range ctrs.Items {
		labels = append(labels, c.Labels)
	}
	for _, nw := range nets.Items {
		labels = append(labels, nw.Labels)
	}
	for _, v := range vols.Items {
		labels = append(labels, v.Labels)
	}

	var runs []Swept
	for _, l := range labels {
		id := l[LabelRun]
		if slices.ContainsFunc(runs, func(s Swept) bool { return s.RunID == id }) ||
			len(runIDs) > 0 && !slices.Contains(runIDs, id) {
			continue
		}
		// One harness made all of a run's things: the first one found
		// speaks for the run.
		s := Swept{RunID: id}
		s.Kept, s.Why = decide(l[LabelOwner], all)
		runs = append(runs, s)
	}
	var errs []error
	for i, s := range runs {
		if s.Kept {
			continue
		}
		n, err := CleanCount(ctx, docker, s.RunID)
		runs[i].Removed = n
		errs = append(errs, err)
	}
	return runs, errors.Join(errs...)
}
