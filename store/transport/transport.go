// Package transport carries Raft messages between kvnode members over HTTP.
//
// Each peer has one sender goroutine and a bounded queue, so messages to one
// peer stay in order and a slow or unreachable peer never blocks Raft: when
// its queue is full, messages are dropped and Raft retransmits as it would
// after any loss. A request body is a batch of length-prefixed
// raftpb.Message encodings.
package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Path is where peers POST messages.
const Path = "/raft/message"

const (
	headerCluster = "X-Kvnode-Cluster-Id"
	headerFrom    = "X-Kvnode-From"
	queueSize     = 4096
	maxBatchBytes = 8 << 20
)

// Raft is the part of the local node the transport talks to.
type Raft interface {
	Step(ctx context.Context, m raftpb.Message) error
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, ok bool)
}

// Transport sends to and receives from peers.
type Transport struct {
	clusterID uint64
	self      uint64
	raft      Raft
	client    *http.Client
	log       *slog.Logger

	isolated atomic.Bool

	mu    sync.Mutex
	peers map[uint64]*peer
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc
}

type peer struct {
	id   uint64
	urls []string
	q    chan raftpb.Message
	stop chan struct{}
}

// New returns a transport for member self of cluster clusterID. tlsConfig may
// be nil for plain HTTP.
func New(clusterID, self uint64, tlsConfig *tls.Config, log *slog.Logger) *Transport {
	ctx, cancel := context.WithCancel(context.Background())
	return &Transport{
		clusterID: clusterID,
		self:      self,
		log:       log,
		peers:     map[uint64]*peer{},
		ctx:       ctx,
		stop:      cancel,
		client: &http.Client{
			Transport: &http.Transport{
				TLSClientConfig:     tlsConfig,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     time.Minute,
			},
		},
	}
}

// SetRaft connects the transport to the local node; call before Start.
func (t *Transport) SetRaft(r Raft) { t.raft = r }

// AddPeer starts a sender for peer id at urls.
func (t *Transport) AddPeer(id uint64, urls []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.peers[id]; ok || id == t.self {
		return
	}
	p := &peer{id: id, urls: urls, q: make(chan raftpb.Message, queueSize), stop: make(chan struct{})}
	t.peers[id] = p
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.run(p)
	}()
}

// RemovePeer stops sending to peer id.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		close(p.stop)
		delete(t.peers, id)
	}
}

// SyncPeers makes the set of peers match want (ID to peer URLs).
func (t *Transport) SyncPeers(want map[uint64][]string) {
	t.mu.Lock()
	var gone []uint64
	for id := range t.peers {
		if _, ok := want[id]; !ok {
			gone = append(gone, id)
		}
	}
	t.mu.Unlock()
	for _, id := range gone {
		t.RemovePeer(id)
	}
	for id, urls := range want {
		if len(urls) > 0 {
			t.AddPeer(id, urls)
		}
	}
}

// SetIsolated drops all traffic to and from peers while on: a network
// partition around this member, for tests.
func (t *Transport) SetIsolated(on bool) { t.isolated.Store(on) }

// Send queues messages; it never blocks.
func (t *Transport) Send(msgs []raftpb.Message) {
	if t.isolated.Load() {
		return
	}
	for _, m := range msgs {
		t.mu.Lock()
		p := t.peers[m.To]
		t.mu.Unlock()
		if p == nil {
			continue
		}
		select {
		case p.q <- m:
		default:
			if t.raft != nil {
				t.raft.ReportUnreachable(m.To)
				if m.Type == raftpb.MsgSnap {
					t.raft.ReportSnapshot(m.To, false)
				}
			}
		}
	}
}

// Close stops all senders and waits for them.
func (t *Transport) Close() {
	t.stop()
	t.wg.Wait()
	t.client.CloseIdleConnections()
}

func (t *Transport) run(p *peer) {
	var batch []raftpb.Message
	next := 0
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-p.stop:
			return
		case m := <-p.q:
			batch = append(batch[:0], m)
		}
		size := batch[0].Size()
	drain:
		for size < maxBatchBytes {
			select {
			case m := <-p.q:
				batch = append(batch, m)
				size += m.Size()
			default:
				break drain
			}
		}
		url := p.urls[next%len(p.urls)]
		if err := t.post(url, batch); err != nil {
			next++
			if t.ctx.Err() != nil {
				return
			}
			t.log.Debug("sending to peer failed", "peer", fmt.Sprintf("%x", p.id), "err", err)
			t.raft.ReportUnreachable(p.id)
			for _, m := range batch {
				if m.Type == raftpb.MsgSnap {
					t.raft.ReportSnapshot(p.id, false)
				}
			}
			continue
		}
		for _, m := range batch {
			if m.Type == raftpb.MsgSnap {
				t.raft.ReportSnapshot(p.id, true)
			}
		}
	}
}

func (t *Transport) post(url string, batch []raftpb.Message) error {
	var buf bytes.Buffer
	for i := range batch {
		data, err := batch[i].Marshal()
		if err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		buf.Write(n[:])
		buf.Write(data)
	}
	// A peer that is partitioned away must not hold this sender for long:
	// Raft will resend what matters.
	ctx, cancel := context.WithTimeout(t.ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+Path, &buf)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set(headerCluster, strconv.FormatUint(t.clusterID, 16))
	req.Header.Set(headerFrom, strconv.FormatUint(t.self, 16))
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("post to %s: status %s", url, resp.Status)
	}
	return nil
}

// Handler returns the HTTP handler for incoming messages.
func (t *Transport) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if t.isolated.Load() {
			http.Error(w, "isolated", http.StatusServiceUnavailable)
			return
		}
		if got := r.Header.Get(headerCluster); got != strconv.FormatUint(t.clusterID, 16) {
			http.Error(w, "cluster ID mismatch", http.StatusPreconditionFailed)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		msgs, err := decodeBatch(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, m := range msgs {
			if err := t.raft.Step(r.Context(), m); err != nil {
				t.log.Debug("step peer message", "err", err)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func decodeBatch(body []byte) ([]raftpb.Message, error) {
	var msgs []raftpb.Message
	for len(body) > 0 {
		if len(body) < 4 {
			return nil, errors.New("truncated message length")
		}
		n := binary.BigEndian.Uint32(body)
		body = body[4:]
		if uint64(n) > uint64(len(body)) {
			return nil, errors.New("truncated message")
		}
		var m raftpb.Message
		if err := m.Unmarshal(body[:n]); err != nil {
			return nil, fmt.Errorf("decode message: %w", err)
		}
		msgs = append(msgs, m)
		body = body[n:]
	}
	return msgs, nil
}
