// Command kvnode runs one member of faultline's reference Raft key-value
// store. It speaks the etcd v3 gRPC API and takes etcd's flags, so the same
// launcher starts kvnode or etcd:
//
//	kvnode --name n1 --data-dir /var/lib/kvnode \
//	  --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls http://10.0.0.1:2379 \
//	  --listen-peer-urls http://0.0.0.0:2380 --initial-advertise-peer-urls http://10.0.0.1:2380 \
//	  --initial-cluster n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380 \
//	  --initial-cluster-state new --initial-cluster-token faultline
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/faultline/faultline/store/member"
	"github.com/faultline/faultline/store/server"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kvnode:", err)
		os.Exit(1)
	}
}

// ignoredFlags are etcd flags kvnode accepts and ignores, so an etcd command
// line still starts it. Their values are logged.
var ignoredFlags = []string{
	"quota-backend-bytes", "auto-compaction-mode", "auto-compaction-retention", "logger", "log-outputs",
	"strict-reconfig-check", "pre-vote", "socket-reuse-port", "socket-reuse-address",
	"max-txn-ops", "max-snapshots", "max-wals", "enable-v2", "v2-deprecation",
	"experimental-initial-corrupt-check", "listen-client-http-urls",
	"experimental-compact-hash-check-enabled", "feature-gates", "auth-token", "backend-batch-interval",
	"compaction-batch-limit",
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("kvnode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		name            = fs.String("name", "default", "human-readable name for this member")
		dataDir         = fs.String("data-dir", "", "path to the data directory (default ${name}.kvnode)")
		listenClient    = fs.String("listen-client-urls", "http://localhost:2379", "URLs to listen on for client traffic (gRPC and HTTP)")
		advertiseClient = fs.String("advertise-client-urls", "http://localhost:2379", "client URLs to advertise to the rest of the cluster")
		listenPeer      = fs.String("listen-peer-urls", "http://localhost:2380", "URLs to listen on for peer traffic")
		advertisePeer   = fs.String("initial-advertise-peer-urls", "http://localhost:2380", "this member's peer URLs to advertise")
		listenMetrics   = fs.String("listen-metrics-urls", "", "extra URLs to serve /metrics and /health on")
		initialCluster  = fs.String("initial-cluster", "default=http://localhost:2380", "initial cluster configuration, name=peerURL,...")
		clusterState    = fs.String("initial-cluster-state", "new", "initial cluster state: new or existing")
		clusterToken    = fs.String("initial-cluster-token", "etcd-cluster", "initial cluster token")
		// etcd 3.5's default: a kvnode snapshot carries the whole MVCC
		// history, so it costs more than etcd's and is taken less often.
		snapshotCount   = fs.Uint64("snapshot-count", 100000, "number of committed entries that trigger a snapshot and log compaction")
		catchUp         = fs.Uint64("snapshot-catchup-entries", 5000, "entries kept after a snapshot so slow followers can catch up")
		heartbeatMS     = fs.Uint("heartbeat-interval", 100, "time (in milliseconds) of a heartbeat interval")
		electionMS      = fs.Uint("election-timeout", 1000, "time (in milliseconds) for an election to timeout")
		maxRequestBytes = fs.Int("max-request-bytes", 1572864, "maximum client request size in bytes")
		progressEvery   = fs.Duration("watch-progress-notify-interval", 10*time.Minute, "interval of progress notifications to idle watchers that asked for them")
		logLevel        = fs.String("log-level", "info", "log level: debug, info, warn, error")
		enablePprof     = fs.Bool("enable-pprof", false, "serve runtime profiles under /debug/pprof on the client and metrics URLs")
		bugs            = fs.String("unsafe-bug", "", "comma-separated bugs to inject on purpose: "+strings.Join(server.BugNames, ", "))
		clientTLS       member.TLSInfo
		peerTLS         member.TLSInfo
	)
	fs.StringVar(&clientTLS.CertFile, "cert-file", "", "path to the client server TLS cert file")
	fs.StringVar(&clientTLS.KeyFile, "key-file", "", "path to the client server TLS key file")
	fs.StringVar(&clientTLS.TrustedCAFile, "trusted-ca-file", "", "path to the client server TLS trusted CA file")
	fs.BoolVar(&clientTLS.ClientCertAuth, "client-cert-auth", false, "require client certificates")
	fs.StringVar(&peerTLS.CertFile, "peer-cert-file", "", "path to the peer server TLS cert file")
	fs.StringVar(&peerTLS.KeyFile, "peer-key-file", "", "path to the peer server TLS key file")
	fs.StringVar(&peerTLS.TrustedCAFile, "peer-trusted-ca-file", "", "path to the peer server TLS trusted CA file")
	fs.BoolVar(&peerTLS.ClientCertAuth, "peer-client-cert-auth", false, "require peer client certificates")
	// etcd before 3.6 spells it with the experimental prefix.
	fs.DurationVar(progressEvery, "experimental-watch-progress-notify-interval", 10*time.Minute, "alias of --watch-progress-notify-interval")
	ignored := map[string]*string{}
	for _, n := range ignoredFlags {
		ignored[n] = fs.String(n, "", "accepted for etcd compatibility; ignored")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	for n, v := range ignored {
		if *v != "" {
			log.Info("ignoring etcd flag kvnode does not need", "flag", n, "value", *v)
		}
	}

	cfg := member.Config{
		Name:                   *name,
		DataDir:                *dataDir,
		InitialCluster:         *initialCluster,
		InitialClusterState:    *clusterState,
		InitialClusterToken:    *clusterToken,
		SnapshotCount:          *snapshotCount,
		SnapshotCatchUpEntries: *catchUp,
		HeartbeatInterval:      time.Duration(*heartbeatMS) * time.Millisecond,
		ElectionTimeout:        time.Duration(*electionMS) * time.Millisecond,
		MaxRequestBytes:        *maxRequestBytes,
		EnablePprof:            *enablePprof,
		ClientTLS:              clientTLS,
		PeerTLS:                peerTLS,
		Logger:                 log,
	}
	if cfg.DataDir == "" {
		cfg.DataDir = *name + ".kvnode"
	}
	cfg.ListenClientURLs = splitList(*listenClient)
	cfg.AdvertiseClientURLs = splitList(*advertiseClient)
	cfg.ListenPeerURLs = splitList(*listenPeer)
	cfg.InitialAdvertisePeerURLs = splitList(*advertisePeer)
	cfg.ListenMetricsURLs = splitList(*listenMetrics)
	for _, b := range splitList(*bugs) {
		if err := cfg.Bugs.Set(b); err != nil {
			return fmt.Errorf("--unsafe-bug: %w", err)
		}
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	m, err := member.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer m.Stop()
	select {
	case <-ctx.Done():
		log.Info("shutting down on signal")
		return nil
	case err := <-m.Err():
		return err
	case <-m.Done():
		return errors.New("raft node stopped")
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
