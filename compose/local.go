package compose

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/faultline/faultline/compose/proxy"
	"github.com/faultline/faultline/diskfs"
)

// local runs each member as a process of this machine, with a loopback
// address of its own (127.R.S.11+i, R and S random per run: on Linux all
// of 127/8 is loopback), its data in a folder of the run, its output
// appended to a log file there, and a proxy in front of its peer port.
//
// Local processes share one network stack, so no packet filter can cut
// the link between two of them; the proxies do it instead. Each proxy
// knows which member a connection comes from (the kernel says which
// process holds the dialling socket), so a partition cuts exactly the
// links between the members it separates, while clients still reach
// every member. A proxy cannot lose a share of a TCP stream's packets
// without corrupting it, so peer-loss needs containers.
type local struct {
	binary string
	target Target
	dir    string
	// keep: the members outlive the harness (Config.Keep), so they have
	// no death signal and no peer proxy, which would die with it.
	keep bool

	mu      sync.Mutex
	members []*Member
	procs   map[string]*process
	proxies map[string]*proxy.Proxy
	lns     []net.Listener
	// drops holds, per member, the members it drops.
	drops map[string][]*Member
	// disks are the members' filesystem layers (Config.Disk), in diskMode.
	disks    map[string]*diskfs.FS
	diskMode diskfs.Mode
}

// process is one run of a member's server.
type process struct {
	cmd    *exec.Cmd
	args   []string
	done   chan struct{} // closed when it has exited
	paused bool
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ErrLocalLoss says why peer-loss needs containers.
var ErrLocalLoss = errors.New("needs --runtime docker: local processes share one network stack, " +
	"and a proxy cannot drop a share of a TCP stream's packets without corrupting the stream")

// UpLocal starts cfg.Nodes members of cfg.Binary as local processes and
// waits until the cluster is ready. On error, whatever was started is
// stopped and removed again.
func UpLocal(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if goruntime.GOOS != "linux" {
		return nil, errors.New("--runtime local needs Linux (members get loopback addresses of their own, and the peer proxies ask /proc which member dialled); use --runtime docker")
	}
	if cfg.Nodes < 1 || cfg.Nodes > MaxNodes {
		return nil, fmt.Errorf("nodes = %d: want 1 to %d", cfg.Nodes, MaxNodes)
	}
	if cfg.Disk {
		if cfg.Keep {
			return nil, errors.New("a local cluster kept running cannot have the filesystem layer: the harness serves it")
		}
		if err := DiskNeeds(Local); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("the %s server to run: %w", cfg.Target.Name, err)
	}
	dir, err := newLocalDir(cfg.RunID, cfg.Keep)
	if err != nil {
		return nil, err
	}
	r := &local{binary: cfg.Binary, target: cfg.Target, dir: dir, keep: cfg.Keep, procs: map[string]*process{}, proxies: map[string]*proxy.Proxy{},
		drops: map[string][]*Member{}, disks: map[string]*diskfs.FS{}, diskMode: cfg.DiskMode}
	c := &Cluster{RunID: cfg.RunID, Target: cfg.Target, Runtime: Local, run: r, extra: cfg.Args, disk: cfg.Disk}
	// c, not the result, which a failing return has already made nil.
	defer func() {
		if err != nil {
			c.Down(context.WithoutCancel(ctx))
		}
	}()
	base := [4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), 0}
	for i := range cfg.Nodes {
		m := newMember(base, i, cfg.Failpoints)
		c.Members = append(c.Members, m)
		if cfg.Keep {
			continue
		}
		if err := r.serveProxy(m); err != nil {
			return nil, err
		}
		if cfg.Disk {
			if err := r.mountDisk(m); err != nil {
				return nil, err
			}
		}
	}
	r.members = c.Members
	if err := c.boot(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// serveProxy puts m's peer proxy on its advertised peer address.
func (r *local) serveProxy(m *Member) error {
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", m.IP, peerPort))
	if err != nil {
		return fmt.Errorf("%s's peer proxy: %w", m.Name, err)
	}
	p := &proxy.Proxy{Target: fmt.Sprintf("%s:%d", m.IP, proxiedPeerPort), Source: r.source}
	r.lns = append(r.lns, ln)
	r.proxies[m.Name] = p
	go p.Serve(ln)
	return nil
}

func (r *local) dataDir(m *Member) string { return filepath.Join(r.dir, m.Name) }

func (r *local) listen(m *Member) (client, peer string) {
	if r.keep {
		return fmt.Sprintf("%s:%d", m.IP, clientPort), fmt.Sprintf("%s:%d", m.IP, peerPort)
	}
	return fmt.Sprintf("%s:%d", m.IP, clientPort), fmt.Sprintf("%s:%d", m.IP, proxiedPeerPort)
}

func (r *local) start(_ context.Context, m *Member, args []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.launch(m, args)
}

// launch runs m's server; r.mu is held.
func (r *local) launch(m *Member, args []string) error {
	log, err := os.OpenFile(r.logFile(m), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(r.binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if m.FailpointURL != "" {
		cmd.Env = append(os.Environ(), gofailListen(m.IP))
	}
	// Its own process group keeps a Ctrl-C at the terminal from reaching
	// the members (the harness stops them itself, after healing), and the
	// death signal stops them should the harness die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if r.keep {
		// A kept member outlives the harness, and the terminal too: a
		// session of its own has no controlling terminal to hang up.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	p := &process{cmd: cmd, args: args, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		log.Close()
		close(p.done)
	}()
	r.procs[m.Name] = p
	m.Instance = "pid " + strconv.Itoa(cmd.Process.Pid)
	return nil
}

func (r *local) logFile(m *Member) string { return filepath.Join(r.dir, m.Name+".log") }

func (r *local) proc(m *Member) (*process, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.procs[m.Name]
	if p == nil {
		return nil, errors.New("never started")
	}
	return p, nil
}

func (r *local) kill(ctx context.Context, m *Member) error {
	p, err := r.proc(m)
	if err != nil {
		return err
	}
	if !p.running() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		r.mu.Lock()
		p.paused = false
		r.mu.Unlock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *local) restart(_ context.Context, m *Member) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.procs[m.Name]
	if p == nil {
		return errors.New("never started")
	}
	if p.running() {
		return errors.New("it is running")
	}
	return r.launch(m, p.args)
}

// pause stops every thread of the member and returns once they all are:
// kill(2) only queues SIGSTOP, and a thread that has not yet taken it may
// still answer a request, as a frozen member must not.
func (r *local) pause(ctx context.Context, m *Member) error {
	if err := r.signal(m, syscall.SIGSTOP, true); err != nil {
		return err
	}
	p, err := r.proc(m)
	if err != nil {
		return err
	}
	for {
		stopped, err := allStopped(p.cmd.Process.Pid)
		if err != nil || stopped {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to stop: %w", m.Name, ctx.Err())
		case <-p.done:
			return errors.New("it exited while being paused")
		case <-time.After(time.Millisecond):
		}
	}
}

// allStopped says whether every thread of process pid is in the stopped
// state, as /proc/<pid>/task/<tid>/stat reports it.
func allStopped(pid int) (bool, error) {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		return false, fmt.Errorf("listing the threads of process %d: %v", pid, err)
	}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a thread that ended meanwhile
		} else if err != nil {
			return false, err
		}
		// The state follows the command name, which is in parentheses and
		// may itself hold spaces or parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("%s: unexpected contents %q", path, b)
		}
		if state := b[i+2]; state != 'T' && state != 't' {
			return false, nil
		}
	}
	return true, nil
}

func (r *local) unpause(_ context.Context, m *Member) error {
	return r.signal(m, syscall.SIGCONT, false)
}

func (r *local) signal(m *Member, sig syscall.Signal, paused bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.procs[m.Name]
	if p == nil || !p.running() {
		return errors.New("it is not running")
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	p.paused = paused
	return nil
}

func (r *local) state(_ context.Context, m *Member) (running, paused bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.procs[m.Name]
	if p == nil || !p.running() {
		return false, false, nil
	}
	return true, p.paused, nil
}

// wipe kills m and removes its data. A member with a filesystem layer gets
// a fresh one: removing its files through the old one would leave them for
// a later power loss to bring back.
func (r *local) wipe(ctx context.Context, m *Member) error {
	if err := r.kill(ctx, m); err != nil && m.Instance != "" {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, layered := r.disks[m.Name]
	if err := r.unmountDisk(m); err != nil {
		return err
	}
	if err := errors.Join(os.RemoveAll(r.dataDir(m)), os.RemoveAll(r.backing(m))); err != nil {
		return err
	}
	if layered {
		return r.mountDisk(m)
	}
	return nil
}

func (r *local) log(_ context.Context, m *Member, w io.Writer) error {
	f, err := os.Open(r.logFile(m))
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func (r *local) down(ctx context.Context) error {
	var errs []error
	for _, m := range r.members {
		if err := r.kill(ctx, m); err != nil && m.Instance != "" {
			errs = append(errs, fmt.Errorf("stopping %s: %w", m.Name, err))
		}
	}
	r.mu.Lock()
	for _, ln := range r.lns {
		ln.Close()
	}
	for _, p := range r.proxies {
		p.Close()
	}
	for _, m := range r.members {
		if err := r.unmountDisk(m); err != nil {
			errs = append(errs, fmt.Errorf("unmounting the filesystem layer of %s: %w", m.Name, err))
		}
	}
	r.mu.Unlock()
	errs = append(errs, os.RemoveAll(r.dir))
	return errors.Join(errs...)
}

func (r *local) Cuts() string {
	return "the harness's proxy in front of each member's peer port holds the connections of members cut off (it asks /proc which member dialled)"
}

// Drop cuts the links between m and these members, both ways: a TCP link
// is dead when either end drops the other's packets.
func (r *local) Drop(_ context.Context, m *Member, loss int, from ...*Member) error {
	if loss < 100 {
		return ErrLocalLoss
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drops[m.Name] = from
	r.cut()
	return nil
}

func (r *local) Delay(_ context.Context, m *Member, d, j time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.proxies[m.Name].SetDelay(d, j)
	return nil
}

func (r *local) Heal(_ context.Context, m *Member) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.drops, m.Name)
	r.cut()
	r.proxies[m.Name].SetDelay(0, 0)
	return nil
}

func (r *local) Rules(_ context.Context, m *Member) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rules []string
	for _, o := range r.drops[m.Name] {
		rules = append(rules, o.IP)
	}
	if d, j := r.proxies[m.Name].Delay(); d != 0 || j != 0 {
		rules = append(rules, fmt.Sprintf("delay %s jitter %s", d, j))
	}
	return rules, nil
}

func (r *local) Netem(context.Context, *Member) (string, error) {
	return "netem: not used (local members: the harness's peer proxies)", nil
}

func (r *local) exec(context.Context, *Member, []string) (string, error) {
	return "", errors.New("local members run no commands: they have no container")
}

// cut sets every proxy's cut sources from the drops; r.mu is held.
func (r *local) cut() {
	for _, m := range r.members {
		var off []string
		for _, o := range r.members {
			if slices.Contains(r.drops[m.Name], o) || slices.Contains(r.drops[o.Name], m) {
				off = append(off, o.Name)
			}
		}
		r.proxies[m.Name].SetCut(off)
	}
}

// source names the member whose process dialled c, the connection a proxy
// accepted: the kernel's socket table gives the dialling socket's inode,
// and the member whose process holds that inode among its file
// descriptors is the one. "" when none does (the harness itself, or a
// member that died since).
func (r *local) source(c net.Conn) string {
	inode, err := socketInode(c.RemoteAddr(), c.LocalAddr())
	if err != nil {
		return ""
	}
	want := "socket:[" + inode + "]"
	r.mu.Lock()
	pids := map[string]int{}
	for name, p := range r.procs {
		if p.running() {
			pids[name] = p.cmd.Process.Pid
		}
	}
	r.mu.Unlock()
	for name, pid := range pids {
		fds := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(fds)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil && l == want {
				return name
			}
		}
	}
	return ""
}

// socketInode finds, in /proc/net/tcp, the inode of the IPv4 socket bound
// to local and connected to remote.
func socketInode(local, remote net.Addr) (string, error) {
	l, err1 := procAddr(local)
	rm, err2 := procAddr(remote)
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fs := strings.Fields(sc.Text())
		if len(fs) >= 10 && fs[1] == l && fs[2] == rm {
			return fs[9], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no socket %s -> %s", local, remote)
}

// procAddr writes an IPv4 TCP address as /proc/net/tcp does: the address's
// four bytes as one little-endian hex word, then the port in hex.
func procAddr(a net.Addr) (string, error) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return "", err
	}
	ip := ap.Addr().Unmap()
	if !ip.Is4() {
		return "", fmt.Errorf("%s is not IPv4", a)
	}
	b := ip.As4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", b[3], b[2], b[1], b[0], ap.Port()), nil
}

// localPrefix starts the name of a local run's folder:
// faultline-local-<run id>-<harness pid>.<start>-<random>, so that the
// folder says which harness owns it from the moment it exists.
const localPrefix = "faultline-local-"

func newLocalDir(runID string, keep bool) (string, error) {
	who := harness().pidStart()
	if keep {
		who = keptOwner
	}
	return os.MkdirTemp("", localPrefix+runID+"-"+who+"-")
}

// parseLocalDir splits a local run's folder name into the run id and the
// owner label; folders of an older faultline name no owner.
func parseLocalDir(name string) (runID, ownerLabel string) {
	rest := strings.TrimPrefix(name, localPrefix)
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		rest = rest[:i]
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return rest, ""
	}
	label := rest[i+1:] + "@" + harness().host
	if _, ok := parseOwner(label); !ok && !isKept(label) {
		return rest, ""
	}
	return rest[:i], label
}

// CleanLocal removes the folders of local runs whose harness is gone (a
// harness killed before its teardown leaves one; its members died with
// it), of the runs named (all when none is), and says what it did with
// each. A live run's folder stays, and so does, even with all, a folder
// one of whose members still runs.
func CleanLocal(all bool, runIDs ...string) ([]Swept, error) {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), localPrefix+"*"))
	if err != nil {
		return nil, err
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var cmdlines []string
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil {
			cmdlines = append(cmdlines, string(b))
		}
	}
	var runs []Swept
	var errs []error
	for _, d := range dirs {
		id, label := parseLocalDir(filepath.Base(d))
		if len(runIDs) > 0 && !slices.Contains(runIDs, id) {
			continue
		}
		s := Swept{RunID: id, Dir: d}
		s.Kept, s.Why = decide(label, all)
		running := slices.ContainsFunc(cmdlines, func(cl string) bool { return strings.Contains(cl, d+string(filepath.Separator)) })
		switch {
		case isKept(label) && !running:
			// Its members are the only thing that can keep it: once
			// they are gone (a reboot, a kill), so is the cluster.
			s.Kept, s.Why = false, "left by faultline up, but none of its members runs any more"
		case isKept(label):
			s.Kept, s.Why = true, keptWhy
		case !s.Kept && running:
			// Deleting files under a running member would free nothing
			// and break whatever still uses them.
			s.Kept, s.Why = true, "a member still runs in it"
		}
		if !s.Kept {
			errs = append(errs, detachUnder(d), os.RemoveAll(d))
		}
		runs = append(runs, s)
	}
	return runs, errors.Join(errs...)
}
