package compose

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
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

	"github.com/faultline/faultline/diskfs"
)

// Labels on everything faultline creates in the Docker engine.
const (
	// LabelRun names the run a container, network or volume belongs to.
	LabelRun = "faultline.run"
	// LabelOwner names the harness process that made it, so that
	// faultline clean can tell a live run from one its harness left behind.
	LabelOwner = "faultline.owner"
	// LabelImage marks images faultline built, with the target's name.
	LabelImage = "faultline.image"
	// LabelDisk marks a member container whose data the agent serves
	// through the filesystem layer: it is stopped through its agent.
	LabelDisk = "faultline.disk"
)

// containerDataDir is the member's data directory: its volume, or, with
// the filesystem layer (Config.Disk), the layer the agent serves from the
// volume mounted at containerDiskDir.
const (
	containerDataDir = "/data"
	containerDiskDir = "/disk"
)

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

// containers runs each member in a container of cfg.Image on the run's
// own bridge network, with a fixed address and a data volume.
type containers struct {
	runID     string
	image     string
	target    Target
	peerProxy bool
	disk      bool
	diskMode  diskfs.Mode
	keep      bool
	// failpoints: each member serves gofail's endpoint.
	failpoints bool
	docker     *client.Client
	network    *testcontainers.DockerNetwork
	// earlier holds, per member, the logs of its containers that were
	// removed (wiped, to be replaced): its log file begins with them.
	earlier map[string][]byte
}

// Up starts cfg.Nodes members in containers and waits until the cluster is
// ready. On error, whatever was created is removed again.
func Up(ctx context.Context, docker *client.Client, cfg Config) (_ *Cluster, err error) {
	if cfg.Nodes < 1 || cfg.Nodes > MaxNodes {
		return nil, fmt.Errorf("nodes = %d: want 1 to %d", cfg.Nodes, MaxNodes)
	}
	if cfg.Disk {
		if err := DiskNeeds(Docker); err != nil {
			return nil, err
		}
	}
	r := &containers{runID: cfg.RunID, image: cfg.Image, target: cfg.Target, peerProxy: cfg.PeerProxy, disk: cfg.Disk, diskMode: cfg.DiskMode, keep: cfg.Keep, docker: docker,
		failpoints: cfg.Failpoints, earlier: map[string][]byte{}}
	c := &Cluster{RunID: cfg.RunID, Target: cfg.Target, Runtime: Docker, run: r, extra: cfg.Args, disk: cfg.Disk}
	// c, not the result, which a failing return has already made nil.
	defer func() {
		if err != nil {
			c.Down(context.WithoutCancel(ctx))
		}
	}()
	prefix, err := r.createNetwork(ctx)
	if err != nil {
		return nil, err
	}
	for i := range cfg.Nodes {
		c.Members = append(c.Members, newMember(prefix.Addr().As4(), i, cfg.Failpoints))
	}
	if err := c.boot(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (r *containers) labels() map[string]string {
	return map[string]string{LabelRun: r.runID, LabelOwner: ownerOf(r.keep)}
}

// createNetwork makes the run's bridge network. Fixed member addresses need
// a subnet we chose, so pick a random /24 and try again if it overlaps one
// the engine already uses.
func (r *containers) createNetwork(ctx context.Context) (netip.Prefix, error) {
	var last error
	for range 20 {
		prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(rand.IntN(256)), 0}), 24)
		gw := prefix.Addr().As4()
		gw[3] = 1
		nw, err := tcnetwork.New(ctx,
			tcnetwork.WithLabels(r.labels()),
			tcnetwork.WithIPAM(&network.IPAM{Config: []network.IPAMConfig{{
				Subnet:  prefix,
				Gateway: netip.AddrFrom4(gw),
			}}}),
		)
		if err == nil {
			r.network = nw
			return prefix, nil
		}
		last = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	return netip.Prefix{}, fmt.Errorf("creating the run's network: %w", last)
}

func (r *containers) dataDir(*Member) string { return containerDataDir }

func (r *containers) listen(*Member) (client, peer string) {
	if r.peerProxy {
		// The server listens for peers on loopback only; the agent's proxy
		// takes the advertised peer port and forwards to it.
		return fmt.Sprintf("0.0.0.0:%d", clientPort), fmt.Sprintf("127.0.0.1:%d", proxiedPeerPort)
	}
	return fmt.Sprintf("0.0.0.0:%d", clientPort), fmt.Sprintf("0.0.0.0:%d", peerPort)
}

// entrypoint is the agent serving the member's server when the member has
// a peer proxy or a filesystem layer, and nil (the image's: the server
// alone) otherwise.
func (r *containers) entrypoint() []string {
	serve := []string{AgentPath, "serve"}
	if r.peerProxy {
		serve = append(serve, "-proxy", fmt.Sprintf("0.0.0.0:%d=127.0.0.1:%d", peerPort, proxiedPeerPort))
	}
	if r.disk {
		serve = append(serve, "-disk", containerDiskDir+"/data="+containerDataDir, "-disk-mode", r.diskMode.String())
	}
	if len(serve) == 2 {
		return nil
	}
	return append(serve, "--", "/"+r.target.Binary)
}

func (r *containers) start(ctx context.Context, m *Member, args []string) error {
	volumeAt := containerDataDir
	if r.disk {
		volumeAt = containerDiskDir
	}
	ip, err := netip.ParseAddr(m.IP)
	if err != nil {
		return err
	}
	labels := r.labels()
	if r.disk {
		labels[LabelDisk] = "true"
	}
	netName := r.network.Name
	req := testcontainers.GenericContainerRequest{
		Started: true,
		ContainerRequest: testcontainers.ContainerRequest{
			Image:      r.image,
			Name:       "faultline-" + r.runID + "-" + m.Name,
			Entrypoint: r.entrypoint(),
			Cmd:        args,
			Labels:     labels,
			Networks:   []string{netName},
			NetworkAliases: map[string][]string{
				netName: {m.Name},
			},
			Mounts: testcontainers.ContainerMounts{
				testcontainers.VolumeMount(r.volume(m), testcontainers.ContainerMountTarget(volumeAt)),
			},
			ConfigModifier: func(cc *container.Config) {
				cc.Hostname = m.Name
				if r.failpoints {
					cc.Env = append(cc.Env, gofailListen("0.0.0.0"))
				}
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
				// The engine's default may rotate a log away within a
				// minute of a member repeating one complaint a thousand
				// times a second, and with it how that member started:
				// the logs check and the reader need all of it.
				hc.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "500m", "max-file": "1"}}
				if r.disk {
					// The agent mounts the filesystem layer: FUSE, and the
					// right to mount, which the default AppArmor profile
					// denies.
					hc.CapAdd = append(hc.CapAdd, "SYS_ADMIN")
					hc.Devices = append(hc.Devices, container.DeviceMapping{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"})
					hc.SecurityOpt = append(hc.SecurityOpt, "apparmor=unconfined")
				}
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
		m.Instance = ctr.GetContainerID()
	}
	return err
}

func (r *containers) volume(m *Member) string { return "faultline-" + r.runID + "-" + m.Name }

func (r *containers) wipe(ctx context.Context, m *Member) error {
	if m.Instance != "" && r.disk {
		if err := crashFirst(ctx, r.docker, m.Instance); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	if m.Instance != "" {
		// What the member said before it was wiped (why it refused to
		// start, say) must not go with its container.
		var log bytes.Buffer
		if err := r.copyLog(ctx, m, &log); err == nil {
			r.earlier[m.Name] = append(r.earlier[m.Name], log.Bytes()...)
		}
		_, err := r.docker.ContainerRemove(ctx, m.Instance, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("removing the container: %w", err)
		}
	}
	_, err := r.docker.VolumeRemove(ctx, r.volume(m), client.VolumeRemoveOptions{Force: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("removing the data volume: %w", err)
	}
	return nil
}

func (r *containers) kill(ctx context.Context, m *Member) error {
	if r.disk {
		if err := crashFirst(ctx, r.docker, m.Instance); err != nil {
			return err
		}
	}
	if _, err := r.docker.ContainerKill(ctx, m.Instance, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return err
	}
	// The engine delivers the signal and returns; the container stops a
	// moment later. Wait, so that a kill is done when kill returns.
	deadline := time.Now().Add(10 * time.Second)
	for {
		running, _, err := r.state(ctx, m)
		if err != nil || !running {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still running 10s after SIGKILL")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (r *containers) restart(ctx context.Context, m *Member) error {
	_, err := r.docker.ContainerStart(ctx, m.Instance, client.ContainerStartOptions{})
	return err
}

func (r *containers) pause(ctx context.Context, m *Member) error {
	_, err := r.docker.ContainerPause(ctx, m.Instance, client.ContainerPauseOptions{})
	return err
}

func (r *containers) unpause(ctx context.Context, m *Member) error {
	_, err := r.docker.ContainerUnpause(ctx, m.Instance, client.ContainerUnpauseOptions{})
	return err
}

func (r *containers) state(ctx context.Context, m *Member) (running, paused bool, err error) {
	res, err := r.docker.ContainerInspect(ctx, m.Instance, client.ContainerInspectOptions{})
	if err != nil {
		return false, false, err
	}
	st := res.Container.State
	if st == nil {
		return false, false, nil
	}
	return st.Running, st.Paused, nil
}

// exec runs cmd in m's container and returns its output; a failure is an
// error that carries the output.
func (r *containers) exec(ctx context.Context, m *Member, cmd []string) (string, error) {
	out, err := dockerExec(ctx, r.docker, m.Instance, cmd)
	if err != nil {
		return out, fmt.Errorf("exec %s in %s: %w", strings.Join(cmd, " "), m.Name, err)
	}
	return out, nil
}

// crashFirst has the agent of a container with a filesystem layer kill its
// server, if the container runs, so that the container can then be killed
// without its server hanging (see cmd/agent/disk.go).
func crashFirst(ctx context.Context, docker *client.Client, id string) error {
	res, err := docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	st := res.Container.State
	if st == nil || !st.Running {
		return nil
	}
	if st.Paused {
		if _, err := docker.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
			return fmt.Errorf("unpausing it to stop its server: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if out, err := dockerExec(ctx, docker, id, []string{AgentPath, "disk", "crash"}); err != nil {
		return fmt.Errorf("having the agent kill the server first: %w (%s)", err, strings.TrimSpace(out))
	}
	return nil
}

// dockerExec is docker exec in container id, with stdout and stderr as one
// stream; a non-zero exit is an error.
func dockerExec(ctx context.Context, docker *client.Client, id string, cmd []string) (string, error) {
	created, err := docker.ExecCreate(ctx, id, client.ExecCreateOptions{
		Cmd: cmd, AttachStdout: true, AttachStderr: true, TTY: true,
	})
	if err != nil {
		return "", err
	}
	att, err := docker.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: true})
	if err != nil {
		return "", err
	}
	// The connection does not watch ctx; closing it unblocks the read.
	stop := context.AfterFunc(ctx, att.Close)
	var out bytes.Buffer
	_, rerr := io.Copy(&out, att.Reader)
	stop()
	att.Close()
	if err := ctx.Err(); err != nil {
		return out.String(), err
	}
	if rerr != nil {
		return out.String(), fmt.Errorf("reading its output: %w", rerr)
	}
	// The stream ends when the process does, but the engine may record its
	// exit code a moment later.
	for {
		res, err := docker.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
		if err != nil {
			return out.String(), err
		}
		if !res.Running {
			if res.ExitCode != 0 {
				return out.String(), fmt.Errorf("exit status %d: %s", res.ExitCode, strings.TrimSpace(out.String()))
			}
			return out.String(), nil
		}
		select {
		case <-ctx.Done():
			return out.String(), ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// saveLog writes m's log: its removed containers' and its current one's.
func (r *containers) log(ctx context.Context, m *Member, w io.Writer) error {
	if m.Instance == "" && len(r.earlier[m.Name]) == 0 {
		return os.ErrNotExist
	}
	if _, err := w.Write(r.earlier[m.Name]); err != nil {
		return err
	}
	if m.Instance == "" {
		return nil
	}
	return r.copyLog(ctx, m, w)
}

// copyLog appends the log of m's current container to w.
func (r *containers) copyLog(ctx context.Context, m *Member, w io.Writer) error {
	rc, err := r.docker.ContainerLogs(ctx, m.Instance, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

func (r *containers) down(ctx context.Context) error { return Clean(ctx, r.docker, r.runID) }
