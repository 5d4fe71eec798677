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
)

// containerDataDir is where a member's volume is mounted.
const containerDataDir = "/data"

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
	binary    string
	peerProxy bool
	docker    *client.Client
	network   *testcontainers.DockerNetwork
}

// Up starts cfg.Nodes members in containers and waits until the cluster is
// ready. On error, whatever was created is removed again.
func Up(ctx context.Context, docker *client.Client, cfg Config) (_ *Cluster, err error) {
	if cfg.Nodes < 1 || cfg.Nodes > MaxNodes {
		return nil, fmt.Errorf("nodes = %d: want 1 to %d", cfg.Nodes, MaxNodes)
	}
	r := &containers{runID: cfg.RunID, image: cfg.Image, binary: cfg.Target.Binary, peerProxy: cfg.PeerProxy, docker: docker}
	c := &Cluster{RunID: cfg.RunID, Target: cfg.Target, Runtime: Docker, run: r, extra: cfg.Args}
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
		c.Members = append(c.Members, newMember(prefix.Addr().As4(), i))
	}
	if err := c.boot(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (r *containers) labels() map[string]string {
	return map[string]string{LabelRun: r.runID, LabelOwner: harness().String()}
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

func (r *containers) start(ctx context.Context, m *Member, args []string) error {
	var entrypoint []string
	if r.peerProxy {
		entrypoint = []string{AgentPath, "serve", "-proxy", fmt.Sprintf("0.0.0.0:%d=127.0.0.1:%d", peerPort, proxiedPeerPort),
			"--", "/" + r.binary}
	}
	ip, err := netip.ParseAddr(m.IP)
	if err != nil {
		return err
	}
	labels := r.labels()
	netName := r.network.Name
	req := testcontainers.GenericContainerRequest{
		Started: true,
		ContainerRequest: testcontainers.ContainerRequest{
			Image:      r.image,
			Name:       "faultline-" + r.runID + "-" + m.Name,
			Entrypoint: entrypoint,
			Cmd:        args,
			Labels:     labels,
			Networks:   []string{netName},
			NetworkAliases: map[string][]string{
				netName: {m.Name},
			},
			Mounts: testcontainers.ContainerMounts{
				testcontainers.VolumeMount(r.volume(m), containerDataDir),
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
		m.Instance = ctr.GetContainerID()
	}
	return err
}

func (r *containers) volume(m *Member) string { return "faultline-" + r.runID + "-" + m.Name }

func (r *containers) wipe(ctx context.Context, m *Member) error {
	if m.Instance != "" {
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
	out, err := r.dockerExec(ctx, m, cmd)
	if err != nil {
		return out, fmt.Errorf("exec %s in %s: %w", strings.Join(cmd, " "), m.Name, err)
	}
	return out, nil
}

// dockerExec is docker exec, with stdout and stderr as one stream; a
// non-zero exit is an error.
func (r *containers) dockerExec(ctx context.Context, m *Member, cmd []string) (string, error) {
	created, err := r.docker.ExecCreate(ctx, m.Instance, client.ExecCreateOptions{
		Cmd: cmd, AttachStdout: true, AttachStderr: true, TTY: true,
	})
	if err != nil {
		return "", err
	}
	att, err := r.docker.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: true})
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
		res, err := r.docker.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
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

func (r *containers) saveLog(ctx context.Context, m *Member, path string) error {
	if m.Instance == "" {
		return nil
	}
	rc, err := r.docker.ContainerLogs(ctx, m.Instance, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err
	}
	defer rc.Close()
	return writeFile(path, rc)
}

func (r *containers) down(ctx context.Context) error { return Clean(ctx, r.docker, r.runID) }

// writeFile copies r into a new file at path.
func writeFile(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
