// Package compose runs a cluster of a target store: in containers (one
// private network per run, one container and one data volume per member,
// all labelled with the run so that nothing outlives it), or as local
// processes. Both offer the same cluster to the workloads and the nemesis.
package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/faultline/faultline/diskfs"
)

const (
	clientPort = 2379
	peerPort   = 2380
	// proxiedPeerPort is where a member behind a peer proxy listens.
	proxiedPeerPort = 2381
	// failpointPort is where a member of a failpoint build serves gofail's
	// endpoint (GOFAIL_HTTP), on the member's own address.
	failpointPort = 2382
	// MaxNodes bounds a cluster: Raft clusters beyond nine members are not
	// what etcd-like stores run.
	MaxNodes = 9
)

// Runtimes: where members run.
const (
	Docker = "docker"
	Local  = "local"
)

// Where says in words where members of a runtime run.
func Where(runtime string) string {
	if runtime == Local {
		return "local processes"
	}
	return "containers"
}

// Member is one member of the cluster.
type Member struct {
	Name string
	// IP is the member's fixed address: on the run's network, or a
	// loopback address of its own for a local process. It stays the same
	// across restarts, and clients reach it directly.
	IP        string
	ClientURL string
	PeerURL   string
	// Instance is what runs the member: a container's ID, or a local
	// process's "pid N". A replaced member has a new one; a wiped member
	// none.
	Instance string
	// FailpointURL is where the nemesis arms and disarms the member's
	// failpoints (gofail's HTTP endpoint): set only in a cluster of a
	// failpoint build (Config.Failpoints).
	FailpointURL string
}

// Names lists the members' names, in order.
func Names(ms []*Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// Cluster is a running cluster of one target.
type Cluster struct {
	RunID   string
	Target  Target
	Members []*Member
	// Runtime is Docker or Local.
	Runtime string

	run backend
	// extra are the extra server flags, kept for members started again.
	extra []string
	// disk: the members' data is served through the filesystem layer.
	disk bool
}

// backend is where the members run.
type backend interface {
	Links
	Disks
	// start runs a new instance of m with these server flags and sets
	// m.Instance.
	start(ctx context.Context, m *Member, args []string) error
	// kill sends SIGKILL and returns once the member is dead.
	kill(ctx context.Context, m *Member) error
	// restart runs a stopped member again with the data it had.
	restart(ctx context.Context, m *Member) error
	pause(ctx context.Context, m *Member) error
	unpause(ctx context.Context, m *Member) error
	state(ctx context.Context, m *Member) (running, paused bool, err error)
	// exec runs a command inside m: containers only.
	exec(ctx context.Context, m *Member, cmd []string) (string, error)
	// wipe removes the instance and its data.
	wipe(ctx context.Context, m *Member) error
	// dataDir is where m keeps its data, as its server sees it.
	dataDir(m *Member) string
	// listen returns the addresses m's server listens on for clients and
	// for peers.
	listen(m *Member) (client, peer string)
	// log writes what m's server has printed, over all its instances, to
	// w; os.ErrNotExist when it never ran.
	log(ctx context.Context, m *Member, w io.Writer) error
	down(ctx context.Context) error
}

// Config says what to start.
type Config struct {
	RunID  string
	Target Target
	// Image is the member image (Docker); Binary the server's executable
	// (Local).
	Image  string
	Binary string
	Nodes  int
	// Args are extra server flags for every member.
	Args []string
	// PeerProxy (Docker) starts each member behind the agent's peer proxy
	// (the agent is the entrypoint and runs the server), so the nemesis can
	// slow the links between members. Off, the server is the entrypoint
	// and peers talk to it directly. Local members always have a proxy.
	PeerProxy bool
	// Disk serves each member's data directory through faultline's own
	// filesystem layer (diskfs), for disk faults (see Disks). It needs
	// /dev/fuse, and root for local members (DiskNeeds).
	Disk bool
	// DiskMode is how the layer makes directory changes durable.
	DiskMode diskfs.Mode
	// Failpoints says the target is a failpoint build (FailpointBuild):
	// every member serves gofail's endpoint at its FailpointURL, which
	// only the harness reaches.
	Failpoints bool
	// Keep makes a cluster that outlives the harness, for faultline up:
	// its owner is "up" rather than this process, so clean keeps it until
	// faultline down (DownKept) removes it; local members get no death
	// signal and no peer proxies (they live in the harness), and may not
	// have a filesystem layer.
	Keep bool
}

// newMember is member i (from 0), n<i+1>, at address .11+i of the /24
// that base is in.
func newMember(base [4]byte, i int, failpoints bool) *Member {
	base[3] = byte(11 + i)
	m := &Member{Name: fmt.Sprintf("n%d", i+1), IP: netip.AddrFrom4(base).String()}
	m.ClientURL = fmt.Sprintf("http://%s:%d", m.IP, clientPort)
	m.PeerURL = fmt.Sprintf("http://%s:%d", m.IP, peerPort)
	if failpoints {
		m.FailpointURL = fmt.Sprintf("http://%s:%d", m.IP, failpointPort)
	}
	return m
}

// gofailListen is the GOFAIL_HTTP setting that makes a failpoint build
// serve gofail's endpoint on host.
func gofailListen(host string) string {
	return fmt.Sprintf("GOFAIL_HTTP=%s:%d", host, failpointPort)
}

// boot starts every member of a new cluster and waits until it is ready.
func (c *Cluster) boot(ctx context.Context) error {
	var initial []string
	for _, m := range c.Members {
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	cluster := strings.Join(initial, ",")
	// All at once: a container takes the engine most of a second to make
	// and start, and the members wait for each other anyway.
	errs := make([]error, len(c.Members))
	var wg sync.WaitGroup
	for i, m := range c.Members {
		wg.Go(func() {
			args, err := c.args(m, cluster, "new")
			if err == nil {
				err = c.run.start(ctx, m, args)
			}
			if err != nil {
				errs[i] = fmt.Errorf("starting member %s: %w", m.Name, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.WaitReady(ctx, 60*time.Second)
}

// args are the server flags of member m: the target's template filled in,
// then the extra flags.
func (c *Cluster) args(m *Member, initial, state string) ([]string, error) {
	client, peer := c.run.listen(m)
	args, err := c.Target.memberArgs(MemberFlags{
		Name:               m.Name,
		DataDir:            c.run.dataDir(m),
		ListenClientURL:    "http://" + client,
		AdvertiseClientURL: m.ClientURL,
		ListenPeerURL:      "http://" + peer,
		AdvertisePeerURL:   m.PeerURL,
		InitialCluster:     initial,
		ClusterState:       state,
		Token:              c.RunID,
	})
	if err != nil {
		return nil, err
	}
	return append(args, c.Target.rename(c.extra)...), nil
}

// SnapshotLag is how many entries a member must fall behind the leader
// before the leader no longer has them and sends it a snapshot instead:
// the entries between snapshots plus those kept after one, as the
// target's defaults or the members' flags set them. Zero means not known.
func (c *Cluster) SnapshotLag() uint64 {
	count, catchUp := c.Target.SnapshotCount, c.Target.CatchUpEntries
	for i, a := range c.extra {
		name, v, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !inline && i+1 < len(c.extra) {
			v = c.extra[i+1]
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "snapshot-count":
			count = n
		case "snapshot-catchup-entries", "experimental-snapshot-catchup-entries":
			catchUp = n
		}
	}
	if count == 0 || catchUp == 0 {
		return 0
	}
	return count + catchUp
}

// failed says in err, if any, what was being done to which member: the
// nemesis records it as the reason a fault did not start or heal.
func failed(doing string, m *Member, err error) error {
	if err != nil {
		return fmt.Errorf("%s %s: %w", doing, m.Name, err)
	}
	return nil
}

// Kill sends SIGKILL to a member: the process dies at once, with no chance
// to flush or say goodbye. Its data stays.
func (c *Cluster) Kill(ctx context.Context, m *Member) error {
	return failed("killing", m, c.run.kill(ctx, m))
}

// Start restarts a stopped member with the data it had.
func (c *Cluster) Start(ctx context.Context, m *Member) error {
	return failed("restarting", m, c.run.restart(ctx, m))
}

// Pause freezes a member (the cgroup freezer for a container, SIGSTOP for
// a process): its sockets stay open but nothing answers.
func (c *Cluster) Pause(ctx context.Context, m *Member) error {
	return failed("pausing", m, c.run.pause(ctx, m))
}

// Unpause lets a paused member run again.
func (c *Cluster) Unpause(ctx context.Context, m *Member) error {
	return failed("unpausing", m, c.run.unpause(ctx, m))
}

// State says whether a member runs and whether it is paused.
func (c *Cluster) State(ctx context.Context, m *Member) (running, paused bool, err error) {
	if m.Instance == "" {
		return false, false, nil // wiped, or never started
	}
	running, paused, err = c.run.state(ctx, m)
	if err != nil {
		return false, false, fmt.Errorf("inspecting %s: %w", m.Name, err)
	}
	return running, paused, nil
}

// Exec runs a command (the agent's probe or check, say) in a running
// member's container and returns its output; a failure is an error that
// carries the output. Faults use Links instead; local members run no
// commands.
func (c *Cluster) Exec(ctx context.Context, m *Member, cmd ...string) (string, error) {
	return c.run.exec(ctx, m, cmd)
}

// Wipe removes a member's instance and its data, as a machine that died
// with its disk. Removing what is already gone is no error.
func (c *Cluster) Wipe(ctx context.Context, m *Member) error {
	if err := c.run.wipe(ctx, m); err != nil {
		return fmt.Errorf("wiping %s: %w", m.Name, err)
	}
	m.Instance = ""
	return nil
}

// Rejoin starts a wiped member again with an empty data directory, joining
// the running cluster (--initial-cluster-state existing) after it was
// added back through the Cluster API. initial lists the cluster's members
// as name=peer-URL, the rejoining one included.
func (c *Cluster) Rejoin(ctx context.Context, m *Member, initial string) error {
	if m.Instance != "" {
		return fmt.Errorf("rejoining %s: it still runs as %s; wipe it first", m.Name, m.Instance)
	}
	args, err := c.args(m, initial, "existing")
	if err == nil {
		err = c.run.start(ctx, m, args)
	}
	if err != nil {
		return fmt.Errorf("rejoining %s: %w", m.Name, err)
	}
	return nil
}

// SaveLogs writes each member's log to dir/<member>.log.
func (c *Cluster) SaveLogs(ctx context.Context, dir string) error {
	var errs []error
	for _, m := range c.Members {
		var b bytes.Buffer
		err := c.run.log(ctx, m, &b)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, m.Name+".log"), b.Bytes(), 0o644)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("saving the log of %s: %w", m.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Log is what m's server has printed so far, over all its instances.
func (c *Cluster) Log(ctx context.Context, m *Member) ([]byte, error) {
	var b bytes.Buffer
	err := c.run.log(ctx, m, &b)
	return b.Bytes(), failed("reading the log of", m, err)
}

// Down stops every member and removes what the run made: containers,
// volumes and network, or processes and their data. It carries on past
// errors, so that one stuck member does not keep the rest.
func (c *Cluster) Down(ctx context.Context) error { return c.run.down(ctx) }

// List returns the members, for code that sees the cluster through an
// interface.
func (c *Cluster) List() []*Member { return c.Members }

// Status is one member's answer to the Maintenance Status call.
type Status struct {
	Member   *Member
	ID       uint64
	Leader   uint64
	Term     uint64
	Revision int64
	// RaftIndex is the member's last log index, AppliedIndex the last one
	// it applied; a settled cluster has them equal on every member.
	RaftIndex    uint64
	AppliedIndex uint64
	// Version is the release the member says it runs, e.g. "3.6.16".
	Version string
}

// IsLeader reports whether the member believes it leads.
func (s Status) IsLeader() bool { return s.Leader != 0 && s.ID == s.Leader }

// Status asks one member for its status.
func (c *Cluster) Status(ctx context.Context, m *Member) (Status, error) {
	cli, err := c.Client(m)
	if err != nil {
		return Status{}, err
	}
	defer cli.Close()
	res, err := cli.Status(ctx, m.ClientURL)
	if err != nil {
		return Status{}, fmt.Errorf("status of %s: %w", m.Name, err)
	}
	return Status{Member: m, ID: res.Header.MemberId, Leader: res.Leader, Term: res.RaftTerm, Revision: res.Header.Revision,
		RaftIndex: res.RaftIndex, AppliedIndex: res.RaftAppliedIndex, Version: res.Version}, nil
}

// Leader returns the member that every answering member agrees leads.
func (c *Cluster) Leader(ctx context.Context) (*Member, error) {
	var leader *Member
	var claimed uint64
	for _, m := range c.Members {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.Status(sctx, m)
		cancel()
		if err != nil {
			continue
		}
		if st.Leader == 0 || (claimed != 0 && st.Leader != claimed) {
			return nil, fmt.Errorf("no single leader: %s sees %x, others %x", m.Name, st.Leader, claimed)
		}
		claimed = st.Leader
		if st.IsLeader() {
			leader = m
		}
	}
	if leader == nil {
		return nil, errors.New("no member says it leads")
	}
	return leader, nil
}

// WaitReady waits until every member answers a status call, runs the
// release the target claims, and one leader exists. A member of another
// release fails it at once: waiting does not mend a wrong build.
func (c *Cluster) WaitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for try := 1; ; try++ {
		// A member not yet listening holds its status call until the call's
		// deadline (the client retries, backing off for a second), so the
		// first tries are short and later ones, on a machine too busy for
		// them, longer.
		last = c.ready(ctx, min(time.Duration(try)*250*time.Millisecond, 2*time.Second))
		if last == nil || errors.Is(last, errWrongRelease) {
			return last
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready after %s: %w", limit, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ready says why the cluster is not ready, giving each status call wait.
func (c *Cluster) ready(ctx context.Context, wait time.Duration) error {
	for _, m := range c.Members {
		sctx, cancel := context.WithTimeout(ctx, wait)
		st, err := c.Status(sctx, m)
		cancel()
		if err != nil {
			return err
		}
		if err := c.Target.checkVersion(m.Name, st.Version); err != nil {
			return err
		}
	}
	_, err := c.Leader(ctx)
	return err
}

// Client returns an etcd client for the given members (all when none),
// quiet and with short dial timeouts, as the workload and nemesis want.
func (c *Cluster) Client(ms ...*Member) (*clientv3.Client, error) {
	if len(ms) == 0 {
		ms = c.Members
	}
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.ClientURL)
	}
	return clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: time.Second,
		Logger:      zap.NewNop(),
	})
}
