package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func encode(t testing.TB, msgs []raftpb.Message) []byte {
	var buf []byte
	for i := range msgs {
		var err error
		if buf, err = appendMessage(buf, &msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return buf
}

func decodeAll(data []byte) ([]raftpb.Message, error) {
	r := bufio.NewReader(bytes.NewReader(data))
	var out []raftpb.Message
	var scratch []byte
	for {
		m, err := readMessage(r, &scratch)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func TestReadMessage(t *testing.T) {
	in := []raftpb.Message{{Type: raftpb.MsgApp, To: 2, From: 1, Term: 3, Entries: []raftpb.Entry{{Index: 1, Term: 3, Data: []byte("x")}}}, {Type: raftpb.MsgHeartbeat, To: 2}}
	out, err := decodeAll(encode(t, in))
	if err != nil || len(out) != 2 || out[0].Entries[0].Index != 1 || string(out[0].Entries[0].Data) != "x" || out[1].Type != raftpb.MsgHeartbeat {
		t.Fatalf("decode = %+v, %v", out, err)
	}
	if _, err := decodeAll(encode(t, in)[:10]); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated stream: err = %v, want unexpected EOF", err)
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add(encode(f, []raftpb.Message{{Type: raftpb.MsgApp, To: 2}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeAll(data) // must not panic
	})
}

// recorder is a Raft that keeps what it is given.
type recorder struct {
	mu          sync.Mutex
	msgs        []raftpb.Message
	unreachable int
	snapshots   []bool
	got         chan struct{}
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 1)} }

func (r *recorder) Step(ctx context.Context, m raftpb.Message) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) ReportUnreachable(id uint64) {
	r.mu.Lock()
	r.unreachable++
	r.mu.Unlock()
}

func (r *recorder) ReportSnapshot(id uint64, ok bool) {
	r.mu.Lock()
	r.snapshots = append(r.snapshots, ok)
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
}

// waitFor waits until cond holds for r.
func (r *recorder) waitFor(t *testing.T, what string, cond func(*recorder) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.got:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// connect starts member 2, whose Raft is r, and member 1 sending to it. It
// returns both and what member 1's Raft is told.
func connect(t *testing.T, r Raft) (send, recv *Transport, sent *recorder) {
	log := slog.New(slog.DiscardHandler)
	recv = New(7, 2, nil, log)
	recv.SetRaft(r)
	srv := httptest.NewServer(recv.Handler())
	send = New(7, 1, nil, log)
	sent = newRecorder()
	send.SetRaft(sent)
	send.AddPeer(2, []string{srv.URL})
	t.Cleanup(func() {
		send.Close()
		srv.Close()
		recv.Close()
	})
	return send, recv, sent
}

func TestStreamDeliversInOrder(t *testing.T) {
	got := newRecorder()
	send, _, sent := connect(t, got)

	const n = 2000
	for i := range n {
		send.Send([]raftpb.Message{{Type: raftpb.MsgApp, From: 1, To: 2, Index: uint64(i)}})
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // let several batches form
		}
	}
	got.waitFor(t, "all messages", func(r *recorder) bool { return len(r.msgs) == n })
	got.mu.Lock()
	for i, m := range got.msgs {
		if m.Index != uint64(i) {
			t.Fatalf("message %d has index %d: out of order", i, m.Index)
		}
	}
	got.mu.Unlock()

	send.Send([]raftpb.Message{{Type: raftpb.MsgSnap, From: 1, To: 2, Snapshot: &raftpb.Snapshot{Data: []byte("state")}}})
	sent.waitFor(t, "snapshot report", func(r *recorder) bool { return len(r.snapshots) == 1 })
	if !sent.snapshots[0] {
		t.Errorf("snapshot reported as failed")
	}
	got.waitFor(t, "the snapshot", func(r *recorder) bool { return len(r.msgs) == n+1 })
	if m := got.msgs[n]; m.Type != raftpb.MsgSnap || string(m.Snapshot.Data) != "state" {
		t.Errorf("received %v, want the snapshot", m.Type)
	}
}

func TestStreamRecoversFromIsolation(t *testing.T) {
	got := newRecorder()
	send, recv, sent := connect(t, got)

	send.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
	got.waitFor(t, "the first message", func(r *recorder) bool { return len(r.msgs) == 1 })

	// The receiver cuts the stream; the sender notices on its next
	// message and tells Raft. The streams it opens while the cut lasts are
	// turned away at once too, rather than left waiting for an answer.
	recv.SetIsolated(true)
	sendUntil(t, send, 0, "a second unreachable report", func() bool {
		sent.mu.Lock()
		defer sent.mu.Unlock()
		return sent.unreachable >= 2
	})
	// Once the cut heals, a new stream carries messages again.
	recv.SetIsolated(false)
	sendUntil(t, send, 99, "a message after the isolation ended", func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		return got.msgs[len(got.msgs)-1].Commit == 99
	})
}

// sendUntil sends send's peer a heartbeat carrying commit every 20 ms
// until cond holds, and fails after 10 s.
func sendUntil(t *testing.T, send *Transport, commit uint64, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		send.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Commit: commit}})
		time.Sleep(20 * time.Millisecond)
	}
}

// leaderless is a Raft that knows no leader: like raft.Node, it holds a
// proposal until it learns one (here: until lead is closed).
type leaderless struct {
	*recorder
	lead chan struct{}
}

func (l leaderless) Step(ctx context.Context, m raftpb.Message) error {
	if m.Type == raftpb.MsgProp {
		select {
		case <-l.lead:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return l.recorder.Step(ctx, m)
}

func TestForwardedProposalDoesNotHoldUpTheStream(t *testing.T) {
	got := leaderless{newRecorder(), make(chan struct{})}
	send, _, _ := connect(t, got)

	// A proposal forwarded to a member that lost its leader, then the
	// heartbeat of the new leader: the heartbeat must get through, or the
	// member never learns the leader its proposal waits for.
	send.Send([]raftpb.Message{{Type: raftpb.MsgProp, From: 1, To: 2, Entries: []raftpb.Entry{{Data: []byte("x")}}}})
	send.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 5}})
	got.waitFor(t, "the heartbeat behind a waiting proposal", func(r *recorder) bool { return len(r.msgs) == 1 })
	if m := got.msgs[0]; m.Type != raftpb.MsgHeartbeat {
		t.Fatalf("first message stepped is %v, want the heartbeat", m.Type)
	}
	close(got.lead)
	got.waitFor(t, "the proposal once a leader is known", func(r *recorder) bool { return len(r.msgs) == 2 })
	if m := got.msgs[1]; m.Type != raftpb.MsgProp || string(m.Entries[0].Data) != "x" {
		t.Errorf("second message stepped is %v, want the proposal", m.Type)
	}
}

// TestRefusalLeavesTheServerSound refuses requests whose bodies the handler
// does not read: a snapshot, sent whole, and a stream its sender ends after
// the answer. net/http must not panic over the body left behind (see
// refuse).
func TestRefusalLeavesTheServerSound(t *testing.T) {
	snap := encode(t, []raftpb.Message{{Type: raftpb.MsgSnap, From: 1, To: 2, Snapshot: &raftpb.Snapshot{Data: []byte("state")}}})
	heartbeat := encode(t, []raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
	for _, tc := range []struct {
		name       string
		header     string
		body, rest string // sent before and after the answer
	}{
		{"snapshot", fmt.Sprintf("Content-Length: %d", len(snap)), string(snap), ""},
		{"stream", "Transfer-Encoding: chunked", fmt.Sprintf("%x\r\n%s\r\n", len(heartbeat), heartbeat), "0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := New(7, 2, nil, slog.New(slog.DiscardHandler))
			recv.SetRaft(newRecorder())
			recv.SetIsolated(true)
			defer recv.Close()
			var errs bytes.Buffer
			srv := httptest.NewUnstartedServer(recv.Handler())
			srv.Config.ErrorLog = log.New(&errs, "", 0)
			srv.Start()

			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: kvnode\r\n%s: 7\r\n%s\r\n\r\n%s", Path, headerCluster, tc.header, tc.body)
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("isolated member answered %s, want 503", resp.Status)
			}
			io.WriteString(conn, tc.rest)
			// Until the server hangs up, or is done with the request and
			// waits for the next.
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, br)
			srv.Close() // waits for the connection's goroutine, so for its log
			if strings.Contains(errs.String(), "panic") {
				t.Errorf("server log: %s", errs.String())
			}
		})
	}
}
