// Package transport carries Raft messages between kvnode members over HTTP.
//
// Each peer gets one long-lived streaming POST: its body is an endless
// sequence of length-prefixed raftpb.Message encodings, written as Raft
// produces them and stepped by the receiver as they arrive, as etcd's
// stream transport does. A request and response per batch would make every
// hop wait for the previous batch's answer and pay a request's overhead.
// Snapshots, which are large and whose delivery Raft must be told of, go as
// separate one-message POSTs.
//
// Messages to one peer stay in order and a slow or unreachable peer never
// blocks Raft: its queue is bounded, and when it is full, or the stream
// breaks, messages are dropped and Raft retransmits as it would after any
// loss.
package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Path is where peers POST messages.
const Path = "/raft/message"

const (
	headerCluster = "X-Kvnode-Cluster-Id"
	headerFrom    = "X-Kvnode-From"
	queueSize     = 4096
	maxBatchBytes = 8 << 20
	// writeBuffer holds one chunk of a stream whole (a chunk is what one
	// Read of the body returns, at most 32 KB), so the chunk goes to the
	// connection in one write instead of being split at 4 KB.
	writeBuffer = 64 << 10
	// maxMessageBytes bounds one message's length field, so a corrupt one
	// cannot make the receiver allocate gigabytes.
	maxMessageBytes = 512 << 20
	// stallTimeout is how long a write to a peer may stay stuck (its TCP
	// window closed: the peer is partitioned away or paused) before the
	// stream is dropped and Raft hears the peer is unreachable.
	stallTimeout = 3 * time.Second
	// snapshotTimeout bounds sending one snapshot.
	snapshotTimeout = time.Minute
	// dialTimeout bounds connecting to a peer. A connection attempt made
	// while the peer is cut off is lost, and the kernel would retry it for
	// two minutes, backing off, long after the link healed.
	dialTimeout = time.Second
	// retryInterval is the pause between attempts to open a stream.
	retryInterval = 100 * time.Millisecond
	// proposalQueue and proposalWait bound the forwarded proposals waiting
	// for this member to know a leader: beyond them a proposal is dropped,
	// and the client that made it times out as after any lost message.
	proposalQueue = 1024
	proposalWait  = 2 * time.Second
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

	// proposals carries proposals forwarded by peers (MsgProp) from the
	// streams that brought them to Raft. Raft takes a proposal only once
	// it knows a leader, so stepping one can wait out an election; done on
	// the stream, that wait would hold up the very message that names the
	// leader, and the member would never learn it.
	proposals chan raftpb.Message

	mu     sync.Mutex
	peers  map[uint64]*peer
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context
	stop   context.CancelFunc
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
	t := &Transport{
		clusterID: clusterID,
		self:      self,
		log:       log,
		proposals: make(chan raftpb.Message, proposalQueue),
		peers:     map[uint64]*peer{},
		ctx:       ctx,
		stop:      cancel,
		client: &http.Client{
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}).DialContext,
				TLSHandshakeTimeout: dialTimeout,
				TLSClientConfig:     tlsConfig,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     time.Minute,
				WriteBufferSize:     writeBuffer,
			},
		},
	}
	t.wg.Go(t.stepProposals)
	return t
}

// SetRaft connects the transport to the local node; call before serving
// Handler.
func (t *Transport) SetRaft(r Raft) { t.raft = r }

// AddPeer starts a sender for peer id at urls.
func (t *Transport) AddPeer(id uint64, urls []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.peers[id]; ok || id == t.self || t.closed {
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
	if t.isolated.Load() || len(msgs) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	for _, m := range msgs {
		p := t.peers[m.To]
		if p == nil {
			continue
		}
		if m.Type == raftpb.MsgSnap {
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				t.sendSnapshot(p, m)
			}()
			continue
		}
		select {
		case p.q <- m:
		default:
			if t.raft != nil {
				t.raft.ReportUnreachable(m.To)
			}
		}
	}
}

// stepProposals steps forwarded proposals into Raft, one at a time, until
// the transport closes.
func (t *Transport) stepProposals() {
	for {
		select {
		case m := <-t.proposals:
			ctx, cancel := context.WithTimeout(t.ctx, proposalWait)
			if err := t.raft.Step(ctx, m); err != nil {
				t.log.Debug("dropped a forwarded proposal", "err", err)
			}
			cancel()
		case <-t.ctx.Done():
			return
		}
	}
}

// Close stops all senders and waits for them.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.stop()
	t.wg.Wait()
	t.client.CloseIdleConnections()
}

// run keeps a stream to p open until the peer is removed or the transport
// closed, moving to the peer's next URL after a failure.
func (t *Transport) run(p *peer) {
	for next := 0; ; next++ {
		// A stream opens with a message to send, so a peer nobody talks
		// to (one follower to another) costs no connection.
		var first raftpb.Message
		select {
		case first = <-p.q:
		case <-t.ctx.Done():
			return
		case <-p.stop:
			return
		}
		err := t.stream(p, p.urls[next%len(p.urls)], first)
		if t.ctx.Err() != nil {
			return
		}
		select {
		case <-p.stop:
			return
		default:
		}
		t.log.Debug("stream to peer ended", "peer", fmt.Sprintf("%x", p.id), "err", err)
		t.raft.ReportUnreachable(p.id)
		// What was queued behind the broken stream is as good as lost:
		// a new stream carries what Raft sends from now on, not a backlog.
	drop:
		for {
			select {
			case <-p.q:
			default:
				break drop
			}
		}
		select {
		case <-t.ctx.Done():
			return
		case <-p.stop:
			return
		case <-time.After(retryInterval):
		}
	}
}

var errPeerRemoved = errors.New("peer removed")

// stream sends p's queue as one request body until something fails.
func (t *Transport) stream(p *peer, url string, first raftpb.Message) error {
	ctx, cancel := context.WithCancel(t.ctx)
	body := &streamBody{ctx: ctx, p: p, first: &first}
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() {
		tick := time.NewTicker(stallTimeout / 4)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if body.stalled() {
					t.log.Debug("stream to peer stalled", "peer", fmt.Sprintf("%x", p.id))
					cancel()
					return
				}
			}
		}
	})
	resp, err := t.do(ctx, url, body, -1)
	if err != nil {
		return err
	}
	return fmt.Errorf("peer answered %s", resp.Status)
}

// streamBody is a request body that never ends: each Read hands out the
// messages queued for the peer, encoded, waiting for one if there are none.
type streamBody struct {
	ctx   context.Context
	p     *peer
	first *raftpb.Message // sent before anything from the queue
	buf   []byte          // encoded messages
	off   int             // how much of buf has been read

	// handedOut is when Read last returned bytes, or 0 while Read waits
	// for messages: between the two the transport is writing them.
	handedOut atomic.Int64
}

func (b *streamBody) Read(out []byte) (int, error) {
	b.handedOut.Store(0)
	if b.off == len(b.buf) {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(out, b.buf[b.off:])
	b.off += n
	b.handedOut.Store(time.Now().UnixNano())
	return n, nil
}

// fill waits for a message and encodes it with whatever else is queued.
func (b *streamBody) fill() error {
	var m raftpb.Message
	if b.first != nil {
		m, b.first = *b.first, nil
	} else {
		select {
		case m = <-b.p.q:
		case <-b.ctx.Done():
			return b.ctx.Err()
		case <-b.p.stop:
			return errPeerRemoved
		}
	}
	b.buf, b.off = b.buf[:0], 0
	for {
		var err error
		if b.buf, err = appendMessage(b.buf, &m); err != nil {
			return err
		}
		if len(b.buf) >= maxBatchBytes {
			return nil
		}
		select {
		case m = <-b.p.q:
		default:
			return nil
		}
	}
}

// stalled reports whether bytes handed out have not been written for
// stallTimeout.
func (b *streamBody) stalled() bool {
	at := b.handedOut.Load()
	return at != 0 && time.Since(time.Unix(0, at)) > stallTimeout
}

// sendSnapshot posts one MsgSnap and tells Raft how it went. It has a
// request of its own: a snapshot can take long to send, and Raft waits to
// hear that it arrived.
func (t *Transport) sendSnapshot(p *peer, m raftpb.Message) {
	ctx, cancel := context.WithTimeout(t.ctx, snapshotTimeout)
	defer cancel()
	data, err := appendMessage(nil, &m)
	ok := false
	if err == nil {
		for _, url := range p.urls {
			var resp *http.Response
			if resp, err = t.do(ctx, url, bytes.NewReader(data), int64(len(data))); err == nil {
				if ok = resp.StatusCode == http.StatusNoContent; ok {
					break
				}
				err = fmt.Errorf("peer answered %s", resp.Status)
			}
			if ctx.Err() != nil {
				break
			}
		}
	}
	if !ok {
		t.log.Warn("sending snapshot to peer failed", "peer", fmt.Sprintf("%x", p.id), "err", err)
		t.raft.ReportUnreachable(p.id)
	}
	t.raft.ReportSnapshot(p.id, ok)
}

// do posts body (of length n, -1 if unknown) to url and returns the
// response, its body drained and closed.
func (t *Transport) do(ctx context.Context, url string, body io.Reader, n int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+Path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.ContentLength = n
	req.Header.Set(headerCluster, strconv.FormatUint(t.clusterID, 16))
	req.Header.Set(headerFrom, strconv.FormatUint(t.self, 16))
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("post to %s: %w", url, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp, nil
}

// appendMessage appends m's encoding, prefixed with its length.
func appendMessage(buf []byte, m *raftpb.Message) ([]byte, error) {
	n := m.Size()
	start := len(buf)
	buf = slices.Grow(buf, 4+n)[:start+4+n]
	binary.BigEndian.PutUint32(buf[start:], uint32(n))
	if _, err := m.MarshalTo(buf[start+4:]); err != nil {
		return buf[:start], fmt.Errorf("encode message: %w", err)
	}
	return buf, nil
}

// readMessage reads one message written by appendMessage, using *scratch
// as its buffer (the decoded message does not keep it). A body that ends
// cleanly between two messages gives io.EOF.
func readMessage(r *bufio.Reader, scratch *[]byte) (raftpb.Message, error) {
	var m raftpb.Message
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return m, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxMessageBytes {
		return m, fmt.Errorf("message length %d is over the limit", n)
	}
	if uint32(cap(*scratch)) < n {
		*scratch = make([]byte, n)
	}
	data := (*scratch)[:n]
	if _, err := io.ReadFull(r, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return m, fmt.Errorf("read message: %w", err)
	}
	if err := m.Unmarshal(data); err != nil {
		return m, fmt.Errorf("decode message: %w", err)
	}
	return m, nil
}

// Handler returns the HTTP handler for incoming messages: a stream, or a
// single snapshot, stepped into Raft message by message as it arrives.
func (t *Transport) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Before any answer: otherwise the server reads up to 256 KB of
		// the body before it sends one, even a refusal, and a stream of
		// heartbeats takes hours to get there, so a stream opened while
		// this member is isolated would hang instead of being refused.
		http.NewResponseController(w).EnableFullDuplex()
		if r.Method != http.MethodPost {
			refuse(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if t.isolated.Load() {
			refuse(w, "isolated", http.StatusServiceUnavailable)
			return
		}
		if got := r.Header.Get(headerCluster); got != strconv.FormatUint(t.clusterID, 16) {
			refuse(w, "cluster ID mismatch", http.StatusPreconditionFailed)
			return
		}
		br := bufio.NewReaderSize(r.Body, 64<<10)
		var scratch []byte
		for {
			m, err := readMessage(br, &scratch)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				refuse(w, err.Error(), http.StatusBadRequest)
				return
			}
			if t.isolated.Load() {
				refuse(w, "isolated", http.StatusServiceUnavailable)
				return
			}
			if raft.IsLocalMsg(m.Type) {
				continue // only this member's own storage threads send these
			}
			if m.Type == raftpb.MsgProp {
				select {
				case t.proposals <- m:
				default:
					t.log.Debug("dropped a forwarded proposal: too many wait for a leader")
				}
				continue
			}
			if err := t.raft.Step(r.Context(), m); err != nil {
				t.log.Debug("step peer message", "err", err)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// refuse answers a request whose body is left unread, and closes the
// connection after the answer. With full duplex on, net/http would drain
// the body after the handler returned and, reaching its end, start
// watching for the next request on the connection after it stopped
// looking; waiting for that request then panics on the concurrent read
// (golang/go#68560) and kills the connection under the next request a
// peer sent on it, a stream say, and the messages it carried.
func refuse(w http.ResponseWriter, msg string, code int) {
	w.Header().Set("Connection", "close")
	http.Error(w, msg, code)
}
