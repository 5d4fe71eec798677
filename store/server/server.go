// Package server is kvnode's etcd v3 API: the gRPC services, and the state
// machine that Raft drives (MVCC store, leases, member attributes).
//
// A write is proposed to Raft by the member the client called (Raft forwards
// it to the leader) and answered by that member once it has applied the
// entry. A linearizable read waits for ReadIndex; a serializable read is
// served from local state.
package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"

	"github.com/faultline/faultline/store/membership"
	"github.com/faultline/faultline/store/mvcc"
	"github.com/faultline/faultline/store/raftnode"
)

// Bugs are the --unsafe-bug switches. Each injects one real class of bug so
// the harness can prove it notices.
type Bugs struct {
	StaleRead       bool // linearizable reads served locally without ReadIndex
	AckBeforeCommit bool // writes acknowledged once proposed, before commit
	LostFsync       bool // the WAL written but never fsynced: a power loss loses acknowledged writes
	// A failed WAL fsync taken for a successful one: the write is
	// acknowledged, and a power loss loses it.
	IgnoreFsyncError bool
	// The log is created, and renamed into place after a snapshot,
	// without fsyncing its directory: only a strict file system loses it.
	SkipDirFsync bool
	WatchDrop    bool // an occasional watch event is not delivered
	WatchDup     bool // an occasional watch event is delivered twice
	LeaseEarly   bool // leases expire at a third of their TTL
	// The member with the highest ID does not apply compactions: it keeps
	// history the others dropped, which reads of current state never show.
	DivergentCompact bool
	PanicOnCompact   bool // the member panics when it applies a compaction
	// A transaction that writes reads from the revision before the latest
	// (a read view taken one commit early), while its compares and writes
	// see the current state: its reads and writes are not of one snapshot.
	TxnReadBehind bool
}

type bugSwitch struct {
	name string
	on   *bool
}

// switches pairs each --unsafe-bug name with its field in b.
func (b *Bugs) switches() []bugSwitch {
	return []bugSwitch{
		{"stale-read", &b.StaleRead},
		{"ack-before-commit", &b.AckBeforeCommit},
		{"lost-fsync", &b.LostFsync},
		{"ignore-fsync-error", &b.IgnoreFsyncError},
		{"skip-dir-fsync", &b.SkipDirFsync},
		{"watch-drop", &b.WatchDrop},
		{"watch-dup", &b.WatchDup},
		{"lease-early", &b.LeaseEarly},
		{"divergent-compact", &b.DivergentCompact},
		{"panic-on-compact", &b.PanicOnCompact},
		{"txn-read-behind", &b.TxnReadBehind},
	}
}

// BugNames lists the valid --unsafe-bug values.
var BugNames = func() []string {
	var names []string
	for _, sw := range new(Bugs).switches() {
		names = append(names, sw.name)
	}
	return names
}()

// Set turns on the bug called name.
func (b *Bugs) Set(name string) error {
	for _, sw := range b.switches() {
		if sw.name == name {
			*sw.on = true
			return nil
		}
	}
	return fmt.Errorf("unknown bug %q (known: %v)", name, BugNames)
}

// Names lists the bugs that are on.
func (b Bugs) Names() []string {
	var out []string
	for _, sw := range b.switches() {
		if *sw.on {
			out = append(out, sw.name)
		}
	}
	return out
}

// Config configures a Server.
type Config struct {
	Cluster    *membership.Cluster
	Self       membership.Member
	ClientURLs []string
	// MaxRequestBytes bounds a request (default 1.5 MiB, as etcd).
	MaxRequestBytes int
	// RequestTimeout bounds how long a write waits to be applied.
	RequestTimeout time.Duration
	// ElectionTimeout sets the minimum lease TTL.
	ElectionTimeout time.Duration
	// WatchProgressNotifyInterval is how often idle progress_notify
	// watchers hear the current revision (default 10m, as etcd).
	WatchProgressNotifyInterval time.Duration
	// SyncPeers is told the full peer table (ID to peer URLs) whenever
	// the membership changes, so the transport can follow.
	SyncPeers func(map[uint64][]string)
	// PeerClient talks to other members' peer URLs (TLS-aware); nil means
	// http.DefaultClient.
	PeerClient *http.Client
	Bugs       Bugs
	Logger     *slog.Logger
}

// Server is the state machine plus the API.
type Server struct {
	cfg  Config
	log  *slog.Logger
	node *raftnode.Node

	mu      sync.RWMutex
	kv      *mvcc.Store
	leases  *leases
	members map[uint64][]string // client URLs published through Raft
	// peers is the replicated voting membership: the initial cluster,
	// changed by MemberAdd and MemberRemove through Raft.
	peers   map[uint64]memberRecord
	applied uint64

	waitMu sync.Mutex
	waits  map[uint64]chan result

	reqID atomic.Uint64

	watches *watchHub

	started time.Time
	stopped chan struct{}
}

type result struct {
	resp any
	err  error
}

// New returns a server; call SetNode before serving.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 1536 * 1024
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 7 * time.Second
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		kv:      mvcc.New(),
		leases:  newLeases(),
		members: map[uint64][]string{},
		peers:   map[uint64]memberRecord{},
		waits:   map[uint64]chan result{},
		started: time.Now(),
		stopped: make(chan struct{}),
	}
	s.watches = newWatchHub(s)
	for _, m := range cfg.Cluster.Members {
		s.peers[m.ID] = memberRecord{Name: m.Name, PeerURLs: m.PeerURLs}
	}
	// Request IDs start from the member ID and the clock so that IDs of a
	// previous incarnation, replayed from the log, never match new waiters.
	s.reqID.Store(uint64(cfg.Self.ID&0xffff)<<48 | (uint64(time.Now().UnixMilli())&(1<<40-1))<<8)
	return s
}

// SetNode connects the server to its Raft node.
func (s *Server) SetNode(n *raftnode.Node) { s.node = n }

// Run runs the server's background work (publishing client URLs, lease
// expiry) until ctx is done.
func (s *Server) Run(ctx context.Context) {
	defer close(s.stopped)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.publish(ctx)
	}()
	go func() {
		defer wg.Done()
		s.leaseLoop(ctx)
	}()
	wg.Wait()
	s.watches.closeAll()
}

// publish records this member's name and client URLs in the replicated
// member table, as etcd does, so MemberList can show every member's URLs.
func (s *Server) publish(ctx context.Context) {
	for {
		s.mu.RLock()
		urls, done := s.members[s.cfg.Self.ID]
		s.mu.RUnlock()
		if done && equalStrings(urls, s.cfg.ClientURLs) {
			return
		}
		r := &pb.InternalRaftRequest{ClusterMemberAttrSet: attrSet(s.cfg.Self.ID, s.cfg.Self.Name, s.cfg.ClientURLs)}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := s.propose(pctx, r)
		cancel()
		if err == nil {
			s.log.Info("published member attributes", "name", s.cfg.Self.Name, "client-urls", s.cfg.ClientURLs)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// nextID returns a fresh request ID.
func (s *Server) nextID() uint64 { return s.reqID.Add(1) }

// propose replicates r and waits until this member has applied it.
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (any, error) {
	id := s.nextID()
	r.Header = &pb.RequestHeader{ID: id}
	data, err := r.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	if len(data) > s.cfg.MaxRequestBytes {
		return nil, rpctypes.ErrGRPCRequestTooLarge
	}
	ch := make(chan result, 1)
	s.waitMu.Lock()
	s.waits[id] = ch
	s.waitMu.Unlock()
	defer func() {
		s.waitMu.Lock()
		delete(s.waits, id)
		s.waitMu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if err := s.node.Propose(ctx, data); err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			// Raft dropped it before it reached any log: certainly not applied.
			return nil, rpctypes.ErrGRPCNoLeader
		}
		return nil, s.ctxErr(ctx, err)
	}
	if s.cfg.Bugs.AckBeforeCommit {
		return s.earlyAck(r), nil
	}
	select {
	case res := <-ch:
		return res.resp, res.err
	case <-ctx.Done():
		return nil, s.ctxErr(ctx, ctx.Err())
	case <-s.node.Done():
		return nil, rpctypes.ErrGRPCStopped
	}
}

// ctxErr maps a context error to what etcd would answer.
func (s *Server) ctxErr(ctx context.Context, err error) error {
	if errors.Is(err, context.Canceled) {
		return rpctypes.ErrGRPCCanceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		if s.node.Leader() == raft.None {
			return rpctypes.ErrGRPCTimeoutDueToLeaderFail
		}
		return rpctypes.ErrGRPCTimeout
	}
	if errors.Is(err, raftnode.ErrStopped) || errors.Is(err, raft.ErrStopped) {
		return rpctypes.ErrGRPCStopped
	}
	return err
}

// earlyAck fabricates the answer a correct server would give after the
// commit: the ack-before-commit bug.
func (s *Server) earlyAck(r *pb.InternalRaftRequest) any {
	s.mu.RLock()
	rev := s.kv.Rev() + 1
	s.mu.RUnlock()
	h := &pb.ResponseHeader{Revision: rev}
	switch {
	case r.Put != nil:
		return &pb.PutResponse{Header: h}
	case r.DeleteRange != nil:
		return &pb.DeleteRangeResponse{Header: h}
	case r.Txn != nil:
		return &pb.TxnResponse{Header: h, Succeeded: true}
	case r.LeaseGrant != nil:
		return &pb.LeaseGrantResponse{Header: h, ID: r.LeaseGrant.ID, TTL: r.LeaseGrant.TTL}
	case r.LeaseRevoke != nil:
		return &pb.LeaseRevokeResponse{Header: h}
	case r.Compaction != nil:
		return &pb.CompactionResponse{Header: h}
	}
	return nil
}

// proposeFor proposes r and returns what applying it answered, with this
// member's fields in the header. Every applied answer (and every early ack)
// carries a header, so it is filled in place.
func proposeFor[T interface{ GetHeader() *pb.ResponseHeader }](ctx context.Context, s *Server, r *pb.InternalRaftRequest) (T, error) {
	resp, err := s.propose(ctx, r)
	if err != nil {
		var none T
		return none, err
	}
	out := resp.(T)
	s.header(out.GetHeader())
	return out, nil
}

// readLocal answers a read from this member's state under the read lock,
// with this member's fields in the header.
func readLocal[T interface{ GetHeader() *pb.ResponseHeader }](s *Server, read func() (T, error)) (T, error) {
	s.mu.RLock()
	out, err := read()
	s.mu.RUnlock()
	if err != nil {
		var none T
		return none, err
	}
	s.header(out.GetHeader())
	return out, nil
}

// eachRequest hands handle every request a client streams until the client
// closes its side (a clean end) or either fails.
func eachRequest[T any](recv func() (T, error), handle func(T) error) error {
	for {
		req, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := handle(req); err != nil {
			return err
		}
	}
}

// header fills the fields every response header carries.
func (s *Server) header(h *pb.ResponseHeader) *pb.ResponseHeader {
	if h == nil {
		h = &pb.ResponseHeader{}
	}
	h.ClusterId = s.cfg.Cluster.ID
	h.MemberId = s.cfg.Self.ID
	h.RaftTerm = s.node.Term()
	if h.Revision == 0 {
		s.mu.RLock()
		h.Revision = s.kv.Rev()
		s.mu.RUnlock()
	}
	return h
}

// Apply is the Raft state machine's entry point; see raftnode.StateMachine.
func (s *Server) Apply(index uint64, data []byte) {
	var r pb.InternalRaftRequest
	if err := r.Unmarshal(data); err != nil {
		s.log.Error("cannot decode committed entry; skipping it", "index", index, "err", err)
		return
	}
	res := s.applyRequest(&r)
	var id uint64
	if r.Header != nil {
		id = r.Header.ID
	}
	if id == 0 {
		return
	}
	s.waitMu.Lock()
	ch := s.waits[id]
	s.waitMu.Unlock()
	if ch != nil {
		select {
		case ch <- res:
		default: // already answered; never block the apply loop
		}
	}
}

func (s *Server) applyRequest(r *pb.InternalRaftRequest) result {
	s.mu.Lock()
	var (
		res    result
		events []*eventBatch
	)
	// write applies a key-space change in one MVCC transaction, keeping
	// the events it makes for the watchers.
	write := func(apply func(t *mvcc.Txn) (any, error)) {
		t := s.kv.Write()
		resp, err := apply(t)
		res = result{resp, err}
		events = s.endTxn(t)
	}
	switch {
	case r.Put != nil:
		write(func(t *mvcc.Txn) (any, error) { return s.applyPut(t, r.Put) })
	case r.DeleteRange != nil:
		write(func(t *mvcc.Txn) (any, error) { return s.applyDelete(t, r.DeleteRange), nil })
	case r.Txn != nil:
		write(func(t *mvcc.Txn) (any, error) { return s.applyTxn(t, r.Txn) })
	case r.Compaction != nil:
		res = s.applyCompact(r.Compaction)
	case r.LeaseGrant != nil:
		res = s.applyLeaseGrant(r.LeaseGrant)
	case r.LeaseRevoke != nil:
		var resp any
		resp, events = s.applyLeaseRevoke(r.LeaseRevoke)
		res = result{resp, nil}
		if resp == nil {
			res = result{nil, rpctypes.ErrGRPCLeaseNotFound}
		}
	case r.ClusterMemberAttrSet != nil:
		m := r.ClusterMemberAttrSet
		if m.MemberAttributes != nil {
			s.members[m.Member_ID] = append([]string(nil), m.MemberAttributes.ClientUrls...)
			if rec, ok := s.peers[m.Member_ID]; ok {
				rec.Name = m.MemberAttributes.Name
				s.peers[m.Member_ID] = rec
			}
		}
		res = result{struct{}{}, nil}
	default:
		res = result{nil, fmt.Errorf("unsupported request")}
	}
	// Notify while still holding the lock: see watchHub.
	for _, b := range events {
		s.watches.notify(b)
	}
	s.mu.Unlock()
	return res
}

// Snapshot implements raftnode.StateMachine: it captures the state now, in
// O(1) for the key space, and returns the encoder for the Raft node to run
// off its Ready loop. The encoding is the length of the extras, the extras,
// then the key space, which is by far the largest part and so is encoded
// straight into the result.
func (s *Server) Snapshot() func() ([]byte, error) {
	s.mu.RLock()
	kv := s.kv.Clone()
	extra, err := json.Marshal(snapshotExtra{Members: s.members, Peers: s.peers, Leases: s.leases.export()})
	s.mu.RUnlock()
	return func() ([]byte, error) {
		if err != nil {
			return nil, fmt.Errorf("encode snapshot extras: %w", err)
		}
		buf := binary.AppendUvarint(nil, uint64(len(extra)))
		return kv.Encode(append(buf, extra...))
	}
}

type snapshotExtra struct {
	Members map[uint64][]string
	Peers   map[uint64]memberRecord
	Leases  []leaseRecord
}

// Restore implements raftnode.StateMachine.
func (s *Server) Restore(data []byte) error {
	n, k := binary.Uvarint(data)
	if k <= 0 || uint64(len(data)-k) < n {
		return errors.New("snapshot: truncated")
	}
	var extra snapshotExtra
	if err := json.Unmarshal(data[k:k+int(n)], &extra); err != nil {
		return fmt.Errorf("snapshot extras: %w", err)
	}
	kv, err := mvcc.Decode(data[k+int(n):])
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	s.mu.Lock()
	s.kv = kv
	if extra.Members == nil {
		extra.Members = map[uint64][]string{}
	}
	s.members = extra.Members
	if extra.Peers != nil {
		s.peers = extra.Peers
	}
	s.leases.restore(extra.Leases)
	// Watchers skipped the revisions the snapshot jumped over; replay them
	// from the restored history.
	s.watches.catchUp()
	peers := s.peerURLs()
	s.mu.Unlock()
	if s.cfg.SyncPeers != nil {
		s.cfg.SyncPeers(peers)
	}
	return nil
}

// Revision is the current MVCC revision.
func (s *Server) Revision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kv.Rev()
}

// CompactRevision is the last compaction revision.
func (s *Server) CompactRevision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kv.CompactRev()
}

// ApproxSize is a rough size of the key space in bytes.
func (s *Server) ApproxSize() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(s.kv.KeyCount())*64 + 4096
}
