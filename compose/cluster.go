// Package compose runs a cluster of a target store in containers: one
// private network per run, one container and one data volume per member,
// all labelled with the run so that nothing outlives it.
package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Labels on everything faultline creates.
const (
	// LabelRun names the run a container, network or volume belongs to.
	LabelRun = "faultline.run"
	// LabelImage marks images faultline built, with the target's name.
	LabelImage = "faultline.image"
)

const (
	clientPort = 2379
	peerPort   = 2380
	// proxiedPeerPort is where a member behind the peer proxy listens.
	proxiedPeerPort = 2381
	dataDir         = "/data"
	// MaxNodes bounds a cluster: Raft clusters beyond nine members are not
	// what etcd-like stores run.
	MaxNodes = 9
)

// Member is one container of the cluster.
type Member struct {
	Name string
	// IP is the member's fixed address on the run's network. The host
	// reaches it directly, so clients need no published ports, and it stays
	// the same across restarts.
	IP          string
	ClientURL   string
	PeerURL     string
	ContainerID string
}

// Cluster is a running cluster of one target.
type Cluster struct {
	RunID   string
	Target  Target
	Image   string
	Members []*Member
	// PeerProxy says the members run behind the agent's peer proxy.
	PeerProxy bool

	docker  *client.Client
	network *testcontainers.DockerNetwork
	volumes []string
	// args are the extra server flags, kept for members started again.
	args []string
}

// Config says what to start.
type Config struct {
	RunID  string
	Target Target
	Image  string
	Nodes  int
	// Args are extra server flags for every member.
	Args []string
	// PeerProxy starts each member behind the agent's peer proxy (the agent
	// is the entrypoint and runs the server), so the nemesis can slow the
	// links between members. Off, the server is the entrypoint and peers
	// talk to it directly.
	PeerProxy bool
}

func init() {
	// Ryuk, testcontainers' reaper, is itself an image to pull, and the
	// engine here can pull nothing; our labels do its job (see Clean).
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	tclog.SetDefault(tclog.NewNoopLogger())
}

// NewDocker connects to the Docker engine named by the environment, or
// explains that there is none.
func NewDocker(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker engine answers (%w): start dockerd, or set DOCKER_HOST", err)
	}
	return cli, nil
}

// Up starts cfg.Nodes members and waits until the cluster is ready. On
// error, whatever was created is removed again.
func Up(ctx context.Context, docker *client.Client, cfg Config) (c *Cluster, err error) {
	if cfg.Nodes < 1 || cfg.Nodes > MaxNodes {
		return nil, fmt.Errorf("nodes = %d: want 1 to %d", cfg.Nodes, MaxNodes)
	}
	c = &Cluster{RunID: cfg.RunID, Target: cfg.Target, Image: cfg.Image, PeerProxy: cfg.PeerProxy, docker: docker, args: cfg.Args}
	defer func() {
		if err != nil {
			c.Down(context.WithoutCancel(ctx))
			c = nil
		}
	}()
	labels := map[string]string{LabelRun: cfg.RunID}

	prefix, err := c.createNetwork(ctx, labels)
	if err != nil {
		return nil, err
	}
	var initial []string
	for i := range cfg.Nodes {
		ip := prefix.Addr().As4()
		ip[3] = byte(11 + i)
		m := &Member{Name: fmt.Sprintf("n%d", i+1), IP: netip.AddrFrom4(ip).String()}
		m.ClientURL = fmt.Sprintf("http://%s:%d", m.IP, clientPort)
		m.PeerURL = fmt.Sprintf("http://%s:%d", m.IP, peerPort)
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Members {
		if err := c.startMember(ctx, m, strings.Join(initial, ","), "new", labels, cfg.Args); err != nil {
			return nil, err
		}
	}
	if err := c.WaitReady(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	return c, nil
}

// createNetwork makes the run's bridge network. Fixed member addresses need
// a subnet we chose, so pick a random /24 and try again if it overlaps one
// the engine already uses.
func (c *Cluster) createNetwork(ctx context.Context, labels map[string]string) (netip.Prefix, error) {
	var last error
	for range 20 {
		prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(rand.IntN(256)), 0}), 24)
		gw := prefix.Addr().As4()
		gw[3] = 1
		nw, err := tcnetwork.New(ctx,
			tcnetwork.WithLabels(labels),
			tcnetwork.WithIPAM(&network.IPAM{Config: []network.IPAMConfig{{
				Subnet:  prefix,
				Gateway: netip.AddrFrom4(gw),
			}}}),
		)
		if err == nil {
			c.network = nw
			return prefix, nil
		}
		last = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	return netip.Prefix{}, fmt.Errorf("creating the run's network: %w", last)
}

func (c *Cluster) startMember(ctx context.Context, m *Member, initial, state string, labels map[string]string, extra []string) error {
	vol := c.volume(m)
	if !slices.Contains(c.volumes, vol) {
		c.volumes = append(c.volumes, vol)
	}
	args := []string{
		"--name", m.Name,
		"--data-dir", dataDir,
		"--listen-client-urls", fmt.Sprintf("http://0.0.0.0:%d", clientPort),
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", fmt.Sprintf("http://0.0.0.0:%d", peerPort),
		"--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", initial,
		"--initial-cluster-state", state,
		"--initial-cluster-token", c.RunID,
	}
	args = append(args, extra...)
	var entrypoint []string
	if c.PeerProxy {
		// The server listens for peers on loopback only; the agent's proxy
		// takes the advertised peer port and forwards to it.
		for i := range args {
			if args[i] == "--listen-peer-urls" {
				args[i+1] = fmt.Sprintf("http://127.0.0.1:%d", proxiedPeerPort)
			}
		}
		entrypoint = []string{AgentPath, "serve", "-proxy", fmt.Sprintf("0.0.0.0:%d=127.0.0.1:%d", peerPort, proxiedPeerPort),
			"--", "/" + c.Target.Binary}
	}
	ip, err := netip.ParseAddr(m.IP)
	if err != nil {
		return err
	}
	netName := c.network.Name
	req := testcontainers.GenericContainerRequest{
		Started: true,
		ContainerRequest: testcontainers.ContainerRequest{
			Image:      c.Image,
			Name:       "faultline-" + c.RunID + "-" + m.Name,
			Entrypoint: entrypoint,
			Cmd:        args,
			Labels:     labels,
			Networks:   []string{netName},
			NetworkAliases: map[string][]string{
				netName: {m.Name},
			},
			Mounts: testcontainers.ContainerMounts{
				testcontainers.VolumeMount(vol, dataDir),
			},
			ConfigModifier: func(cc *container.Config) {
				cc.Hostname = m.Name
				// A terminal makes the engine keep stdout and stderr as one
				// plain stream, which is what a member's log file should be.
				cc.Tty = true
			},
			EndpointSettingsModifier: func(eps map[string]*network.EndpointSettings) {
				if ep := eps[netName]; ep != nil {
					ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
				}
			},
			HostConfigModifier: func(hc *container.HostConfig) {
				// The agent changes netfilter rules in the member's own
				// network namespace, which needs NET_ADMIN there (and only
				// there: the host's rules are out of its reach).
				hc.CapAdd = append(hc.CapAdd, "NET_ADMIN")
				for i := range hc.Mounts {
					if hc.Mounts[i].Type == mount.TypeVolume {
						if hc.Mounts[i].VolumeOptions == nil {
							hc.Mounts[i].VolumeOptions = &mount.VolumeOptions{}
						}
						hc.Mounts[i].VolumeOptions.Labels = labels
					}
				}
			},
		},
	}
	ctr, err := testcontainers.GenericContainer(ctx, req)
	if ctr != nil {
		m.ContainerID = ctr.GetContainerID()
	}
	if err != nil {
		return fmt.Errorf("starting member %s: %w", m.Name, err)
	}
	return nil
}

func (c *Cluster) volume(m *Member) string { return "faultline-" + c.RunID + "-" + m.Name }

// Wipe removes a member's container and its data volume, as a machine
// that died with its disk. Removing what is already gone is no error.
func (c *Cluster) Wipe(ctx context.Context, m *Member) error {
	if m.ContainerID != "" {
		_, err := c.docker.ContainerRemove(ctx, m.ContainerID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("removing %s's container: %w", m.Name, err)
		}
		m.ContainerID = ""
	}
	_, err := c.docker.VolumeRemove(ctx, c.volume(m), client.VolumeRemoveOptions{Force: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("removing %s's data: %w", m.Name, err)
	}
	return nil
}

// Rejoin starts a wiped member again with an empty data directory, joining
// the running cluster (--initial-cluster-state existing) after it was
// added back through the Cluster API. initial lists the cluster's members
// as name=peer-URL, the rejoining one included.
func (c *Cluster) Rejoin(ctx context.Context, m *Member, initial string) error {
	if m.ContainerID != "" {
		return fmt.Errorf("rejoining %s: it still has a container; wipe it first", m.Name)
	}
	return c.startMember(ctx, m, initial, "existing", map[string]string{LabelRun: c.RunID}, c.args)
}

// Kill sends SIGKILL to a member: the process dies at once, with no chance
// to flush or say goodbye. Its data volume stays.
func (c *Cluster) Kill(ctx context.Context, m *Member) error {
	if _, err := c.docker.ContainerKill(ctx, m.ContainerID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("killing %s: %w", m.Name, err)
	}
	// The engine delivers the signal and returns; the container stops a
	// moment later. Wait, so that a kill is done when Kill returns.
	deadline := time.Now().Add(10 * time.Second)
	for {
		running, _, err := c.State(ctx, m)
		if err != nil || !running {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("killing %s: still running 10s after SIGKILL", m.Name)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("killing %s: %w", m.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Start restarts a stopped member with the data it had.
func (c *Cluster) Start(ctx context.Context, m *Member) error {
	if _, err := c.docker.ContainerStart(ctx, m.ContainerID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("restarting %s: %w", m.Name, err)
	}
	return nil
}

// Pause freezes every process of a member (the cgroup freezer, as SIGSTOP
// would): its sockets stay open but nothing answers.
func (c *Cluster) Pause(ctx context.Context, m *Member) error {
	if _, err := c.docker.ContainerPause(ctx, m.ContainerID, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("pausing %s: %w", m.Name, err)
	}
	return nil
}

// Unpause lets a paused member run again.
func (c *Cluster) Unpause(ctx context.Context, m *Member) error {
	if _, err := c.docker.ContainerUnpause(ctx, m.ContainerID, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("unpausing %s: %w", m.Name, err)
	}
	return nil
}

// State says whether a member's container runs and whether it is paused.
func (c *Cluster) State(ctx context.Context, m *Member) (running, paused bool, err error) {
	if m.ContainerID == "" {
		return false, false, nil // wiped, or never started
	}
	res, err := c.docker.ContainerInspect(ctx, m.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		return false, false, fmt.Errorf("inspecting %s: %w", m.Name, err)
	}
	st := res.Container.State
	if st == nil {
		return false, false, nil
	}
	return st.Running, st.Paused, nil
}

// Exec runs a command inside a running member (docker exec) and returns
// its output, stdout and stderr together. A non-zero exit is an error that
// carries the output.
func (c *Cluster) Exec(ctx context.Context, m *Member, cmd ...string) (string, error) {
	created, err := c.docker.ExecCreate(ctx, m.ContainerID, client.ExecCreateOptions{
		Cmd: cmd, AttachStdout: true, AttachStderr: true, TTY: true,
	})
	if err != nil {
		return "", fmt.Errorf("exec %s in %s: %w", strings.Join(cmd, " "), m.Name, err)
	}
	att, err := c.docker.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: true})
	if err != nil {
		return "", fmt.Errorf("exec %s in %s: %w", strings.Join(cmd, " "), m.Name, err)
	}
	// The connection does not watch ctx; closing it unblocks the read.
	stop := context.AfterFunc(ctx, att.Close)
	var out bytes.Buffer
	_, rerr := io.Copy(&out, att.Reader)
	stop()
	att.Close()
	if err := ctx.Err(); err != nil {
		return out.String(), fmt.Errorf("exec %s in %s: %w", strings.Join(cmd, " "), m.Name, err)
	}
	if rerr != nil {
		return out.String(), fmt.Errorf("exec %s in %s: reading its output: %w", strings.Join(cmd, " "), m.Name, rerr)
	}
	// The stream ends when the process does, but the engine may record its
	// exit code a moment later.
	for {
		res, err := c.docker.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
		if err != nil {
			return out.String(), fmt.Errorf("exec %s in %s: %w", strings.Join(cmd, " "), m.Name, err)
		}
		if !res.Running {
			if res.ExitCode != 0 {
				return out.String(), fmt.Errorf("exec %s in %s: exit status %d: %s",
					strings.Join(cmd, " "), m.Name, res.ExitCode, strings.TrimSpace(out.String()))
			}
			return out.String(), nil
		}
		select {
		case <-ctx.Done():
			return out.String(), fmt.Errorf("exec %s in %s: %w", strings.Join(cmd, " "), m.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Running reports whether a member's container is running.
func (c *Cluster) Running(ctx context.Context, m *Member) (bool, error) {
	res, err := c.docker.ContainerInspect(ctx, m.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		return false, err
	}
	return res.Container.State != nil && res.Container.State.Running, nil
}

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
		RaftIndex: res.RaftIndex, AppliedIndex: res.RaftAppliedIndex}, nil
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

// WaitReady waits until every member answers a status call and one leader
// exists.
func (c *Cluster) WaitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		last = c.ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready after %s: %w", limit, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Cluster) ready(ctx context.Context) error {
	for _, m := range c.Members {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.Status(sctx, m)
		cancel()
		if err != nil {
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

// SaveLogs writes each member's log to dir/<member>.log.
func (c *Cluster) SaveLogs(ctx context.Context, dir string) error {
	var errs []error
	for _, m := range c.Members {
		if m.ContainerID == "" {
			continue
		}
		if err := c.saveLog(ctx, m, filepath.Join(dir, m.Name+".log")); err != nil {
			errs = append(errs, fmt.Errorf("saving the log of %s: %w", m.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Cluster) saveLog(ctx context.Context, m *Member, path string) error {
	rc, err := c.docker.ContainerLogs(ctx, m.ContainerID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Down removes the cluster's containers, volumes and network. It carries
// on past errors, so that one stuck container does not keep the rest.
func (c *Cluster) Down(ctx context.Context) error {
	return Clean(ctx, c.docker, c.RunID)
}
