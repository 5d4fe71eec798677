// Package member assembles one kvnode member: listeners, Raft node, peer
// transport, the etcd v3 gRPC services, /health and /metrics. cmd/kvnode
// maps etcd's flags onto its Config; tests start members in-process with it.
package member

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/faultline/faultline/store/membership"
	"github.com/faultline/faultline/store/raftnode"
	"github.com/faultline/faultline/store/server"
	"github.com/faultline/faultline/store/transport"
)

// Config is a member's configuration, named after etcd's flags.
type Config struct {
	Name                     string
	DataDir                  string
	ListenClientURLs         []string
	AdvertiseClientURLs      []string
	ListenPeerURLs           []string
	InitialAdvertisePeerURLs []string
	ListenMetricsURLs        []string
	InitialCluster           string
	InitialClusterState      string // "new" or "existing"
	InitialClusterToken      string
	SnapshotCount            uint64
	SnapshotCatchUpEntries   uint64
	HeartbeatInterval        time.Duration
	ElectionTimeout          time.Duration
	MaxRequestBytes          int
	// EnablePprof serves net/http/pprof under /debug/pprof/, as etcd's
	// --enable-pprof does.
	EnablePprof bool
	// WatchProgressNotifyInterval: see server.Config.
	WatchProgressNotifyInterval time.Duration
	ClientTLS                   TLSInfo
	PeerTLS                     TLSInfo
	Bugs                        server.Bugs
	Logger                      *slog.Logger
}

// grpcOverheadBytes is the headroom etcd gives gRPC over --max-request-bytes.
const grpcOverheadBytes = 512 * 1024

// streamWorkers is how many goroutines serve gRPC requests: enough for
// every request of a few hundred busy clients to find one free.
const streamWorkers = 256

// Member is a running member.
type Member struct {
	cfg     Config
	log     *slog.Logger
	node    *raftnode.Node
	srv     *server.Server
	tr      *transport.Transport
	grpc    *grpc.Server
	https   []*http.Server
	splits  []*splitListener
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errc    chan error
	stopped sync.Once

	clientAddrs []net.Addr
}

// Start opens the member's data and listeners and starts serving.
func Start(ctx context.Context, cfg Config) (_ *Member, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("member", cfg.Name)
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 100 * time.Millisecond
	}
	if cfg.ElectionTimeout <= 0 {
		cfg.ElectionTimeout = time.Second
	}
	if cfg.ElectionTimeout < 5*cfg.HeartbeatInterval {
		return nil, fmt.Errorf("--election-timeout (%v) must be at least 5 times --heartbeat-interval (%v)", cfg.ElectionTimeout, cfg.HeartbeatInterval)
	}
	if cfg.InitialClusterState == "" {
		cfg.InitialClusterState = "new"
	}
	if cfg.InitialClusterState != "new" && cfg.InitialClusterState != "existing" {
		return nil, fmt.Errorf("--initial-cluster-state must be new or existing, not %q", cfg.InitialClusterState)
	}
	cluster, err := membership.Parse(cfg.InitialCluster, cfg.InitialClusterToken)
	if err != nil {
		return nil, err
	}
	self, ok := cluster.ByName(cfg.Name)
	if !ok {
		return nil, fmt.Errorf("member %q is not in --initial-cluster %q", cfg.Name, cfg.InitialCluster)
	}
	adv := append([]string(nil), cfg.InitialAdvertisePeerURLs...)
	sort.Strings(adv)
	if strings.Join(adv, ",") != strings.Join(self.PeerURLs, ",") {
		return nil, fmt.Errorf("--initial-advertise-peer-urls %v do not match --initial-cluster's URLs for %s %v", adv, cfg.Name, self.PeerURLs)
	}
	for _, name := range cfg.Bugs.Names() {
		log.Warn("!!! UNSAFE BUG SWITCH ON: this member is deliberately incorrect", "bug", name)
	}

	clientTLS, err := serverTLS(cfg.ClientTLS)
	if err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	peerTLS, err := serverTLS(cfg.PeerTLS)
	if err != nil {
		return nil, fmt.Errorf("peer TLS: %w", err)
	}
	peerClientTLS, err := clientTLSConfig(cfg.PeerTLS)
	if err != nil {
		return nil, fmt.Errorf("peer TLS: %w", err)
	}

	m := &Member{cfg: cfg, log: log, errc: make(chan error, 16)}
	// Listen before starting Raft, so a port conflict fails fast and
	// leaves the data directory untouched. Until the member is up, a
	// failure closes what was opened.
	var peerLns, clientLns, metricsLns []net.Listener
	defer func() {
		if err != nil {
			closeAll(peerLns)
			closeAll(clientLns)
			closeAll(metricsLns)
		}
	}()
	if peerLns, err = listenAll(cfg.ListenPeerURLs, peerTLS, false); err != nil {
		return nil, err
	}
	if clientLns, err = listenAll(cfg.ListenClientURLs, clientTLS, true); err != nil {
		return nil, err
	}
	if metricsLns, err = listenAll(cfg.ListenMetricsURLs, nil, false); err != nil {
		return nil, err
	}

	peerHTTP := &http.Client{Transport: &http.Transport{TLSClientConfig: peerClientTLS}, Timeout: 5 * time.Second}
	memberDir := filepath.Join(cfg.DataDir, "member")
	hasData := dirHasData(memberDir)
	idn, known, err := loadIdentity(memberDir)
	if err == nil {
		switch {
		case known:
			adopt(cluster, &self, idn, nil)
		case !hasData && cfg.InitialClusterState == "existing":
			var table map[uint64][]string
			if idn, table, err = discover(ctx, peerHTTP, cluster, self); err == nil {
				adopt(cluster, &self, idn, table)
				err = saveIdentity(memberDir, idn)
			}
		default:
			err = saveIdentity(memberDir, identity{ID: self.ID, ClusterID: cluster.ID})
		}
	}
	if err != nil {
		return nil, err
	}
	m.srv = server.New(server.Config{
		Cluster:                     cluster,
		Self:                        self,
		ClientURLs:                  cfg.AdvertiseClientURLs,
		MaxRequestBytes:             cfg.MaxRequestBytes,
		ElectionTimeout:             cfg.ElectionTimeout,
		WatchProgressNotifyInterval: cfg.WatchProgressNotifyInterval,
		PeerClient:                  peerHTTP,
		SyncPeers: func(peers map[uint64][]string) {
			delete(peers, self.ID)
			m.tr.SyncPeers(peers)
		},
		Bugs:   cfg.Bugs,
		Logger: log,
	})
	m.tr = transport.New(cluster.ID, self.ID, peerClientTLS, log)
	node, err := raftnode.Start(raftnode.Config{
		ID:                    self.ID,
		Peers:                 cluster.IDs(),
		Dir:                   memberDir,
		Tick:                  cfg.HeartbeatInterval,
		ElectionTicks:         int(cfg.ElectionTimeout / cfg.HeartbeatInterval),
		SnapshotCount:         cfg.SnapshotCount,
		CatchUpEntries:        cfg.SnapshotCatchUpEntries,
		Join:                  !hasData && cfg.InitialClusterState == "existing",
		UnsafeNoSync:          cfg.Bugs.LostFsync,
		UnsafeIgnoreSyncError: cfg.Bugs.IgnoreFsyncError,
		UnsafeNoDirSync:       cfg.Bugs.SkipDirFsync,
		Logger:                log,
	}, m.srv, m.tr)
	if err != nil {
		return nil, err
	}
	m.node = node
	m.srv.SetNode(node)
	m.tr.SetRaft(node)
	for _, p := range cluster.Members {
		if p.ID != self.ID {
			m.tr.AddPeer(p.ID, p.PeerURLs)
		}
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.goRun(func() error { return node.Run(runCtx) })
	m.goRun(func() error { m.srv.Run(runCtx); return nil })

	// Peer side.
	peerMux := http.NewServeMux()
	peerMux.Handle(transport.Path, m.tr.Handler())
	peerMux.Handle("/kvnode/", m.srv.PeerHandler())
	peerMux.HandleFunc("/health", m.health)
	for _, ln := range peerLns {
		m.serveHTTP(ln, peerMux)
	}

	// Client side: gRPC and HTTP share each client port.
	unary, stream := requireLeader(func() bool { return node.Leader() != 0 })
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary),
		grpc.ChainStreamInterceptor(stream),
		grpc.MaxRecvMsgSize(cfg.maxRequestBytes() + grpcOverheadBytes),
		grpc.MaxSendMsgSize(1<<31 - 1),
		grpc.MaxConcurrentStreams(1 << 20),
		// Requests run on long-lived workers rather than a new
		// goroutine each, which would grow its stack afresh for every
		// put; a request finding every worker busy gets a goroutine.
		grpc.NumStreamWorkers(streamWorkers),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	if clientTLS != nil {
		// TLS is terminated by the listener; tell gRPC the conns are secure.
		opts = append(opts, grpc.Creds(terminatedTLS{}))
	}
	m.grpc = grpc.NewServer(opts...)
	pb.RegisterKVServer(m.grpc, m.srv.KVService())
	pb.RegisterMaintenanceServer(m.grpc, m.srv.MaintenanceService())
	pb.RegisterClusterServer(m.grpc, m.srv.ClusterService())
	pb.RegisterLeaseServer(m.grpc, m.srv.LeaseService())
	pb.RegisterWatchServer(m.grpc, m.srv.WatchService())
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(m.grpc, hs)

	clientMux := m.httpMux()
	for _, ln := range clientLns {
		sl := newSplitListener(ln)
		m.splits = append(m.splits, sl)
		m.clientAddrs = append(m.clientAddrs, ln.Addr())
		gl := sl.grpc
		m.goRun(func() error {
			if err := m.grpc.Serve(gl); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("serve gRPC: %w", err)
			}
			return nil
		})
		m.serveHTTP(sl.http, clientMux)
	}
	for _, ln := range metricsLns {
		m.serveHTTP(ln, clientMux)
	}
	log.Info("kvnode member started", "id", fmt.Sprintf("%x", self.ID), "cluster-id", fmt.Sprintf("%x", cluster.ID),
		"client-urls", cfg.ListenClientURLs, "peer-urls", cfg.ListenPeerURLs, "data-dir", cfg.DataDir, "restarted", hasData)
	return m, nil
}

func (c Config) maxRequestBytes() int {
	if c.MaxRequestBytes > 0 {
		return c.MaxRequestBytes
	}
	return 1536 * 1024
}

func (m *Member) goRun(f func() error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := f(); err != nil {
			select {
			case m.errc <- err:
			default:
			}
		}
	}()
}

func (m *Member) serveHTTP(ln net.Listener, h http.Handler) {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	m.https = append(m.https, hs)
	m.goRun(func() error {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve HTTP: %w", err)
		}
		return nil
	})
}

// Err returns a channel that receives fatal errors (for example, the Raft
// loop stopping because the disk failed).
func (m *Member) Err() <-chan error { return m.errc }

// Done is closed when the Raft node has stopped.
func (m *Member) Done() <-chan struct{} { return m.node.Done() }

// ID is the member's ID.
func (m *Member) ID() uint64 { return m.node.ID() }

// Isolate cuts (or restores) this member's peer traffic in both directions,
// simulating a network partition around it; for tests.
func (m *Member) Isolate(on bool) { m.tr.SetIsolated(on) }

// ClientAddrs are the addresses the client listeners are bound to.
func (m *Member) ClientAddrs() []net.Addr { return m.clientAddrs }

// Stop shuts the member down and waits for everything it started.
func (m *Member) Stop() {
	m.stopped.Do(func() {
		m.grpc.Stop()
		for _, sl := range m.splits {
			sl.Close()
		}
		for _, hs := range m.https {
			hs.Close()
		}
		m.cancel()
		<-m.node.Done()
		m.tr.Close()
		m.wg.Wait()
	})
}

func (m *Member) httpMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", m.health)
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", m.health)
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"etcdserver": version.Version, "etcdcluster": version.Cluster(version.Version) + ".0"})
	})
	mux.Handle("/metrics", metricsHandler(m))
	if m.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// health answers like etcd's /health: healthy when there is a leader and a
// linearizable read goes through.
func (m *Member) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	reason := ""
	if m.node.Leader() == 0 {
		reason = "RAFT NO LEADER"
	} else if err := m.node.ReadIndex(ctx); err != nil {
		reason = "RAFT READ INDEX FAILED: " + err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	if reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"health": "false", "reason": reason})
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"health": "true", "reason": ""})
}

func dirHasData(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "wal", "wal.log"))
	return err == nil
}
