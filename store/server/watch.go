package server

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// eventBatch is the events of one revision.
type eventBatch struct {
	rev    int64
	events []*mvccpb.Event
}

// maxQueued bounds the responses waiting on one stream; a client that reads
// slower than that loses the stream and resumes from its last revision.
const maxQueued = 100000

// watchHub fans committed events out to watchers. notify runs on the apply
// path with s.mu held for writing, and watchers are registered with s.mu
// held for reading, so a watcher sees every revision after its start exactly
// once and in order, and a progress notification never overtakes an event.
type watchHub struct {
	s     *Server
	mu    sync.Mutex
	ws    map[*watcher]struct{}
	count atomic.Int64
	// bug switches count events to decide which one to drop or repeat
	seen int
}

type watcher struct {
	id        int64
	key, end  []byte
	noPut     bool
	noDelete  bool
	prevKV    bool
	progress  bool
	nextRev   int64
	stream    *watchStream
	sentSince bool // an event was sent since the last progress tick
}

func newWatchHub(s *Server) *watchHub { return &watchHub{s: s, ws: map[*watcher]struct{}{}} }

func (w *watcher) matches(key []byte) bool {
	return keyRange{w.key, w.end}.contains(key)
}

// filter returns the events w wants from evs, with prev_kv filled in.
func (h *watchHub) filter(w *watcher, evs []*mvccpb.Event) []*mvccpb.Event {
	var out []*mvccpb.Event
	for _, e := range evs {
		if !w.matches(e.Kv.Key) {
			continue
		}
		if (e.Type == mvccpb.PUT && w.noPut) || (e.Type == mvccpb.DELETE && w.noDelete) {
			continue
		}
		if w.prevKV {
			c := *e
			c.PrevKv = h.s.kv.PrevKV(e.Kv.Key, e.Kv.ModRevision)
			e = &c
		}
		out = append(out, e)
	}
	return out
}

func (h *watchHub) notify(b *eventBatch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.ws {
		if b.rev < w.nextRev {
			continue
		}
		w.nextRev = b.rev + 1
		evs := h.filter(w, b.events)
		if len(evs) == 0 {
			continue
		}
		resp := &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: b.rev}, WatchId: w.id, Events: evs}
		h.seen++
		if h.s.cfg.Bugs.WatchDrop && h.seen%37 == 0 {
			continue
		}
		w.sentSince = true
		w.stream.enqueue(resp)
		if h.s.cfg.Bugs.WatchDup && h.seen%41 == 0 {
			w.stream.enqueue(resp)
		}
	}
}

// catchUp brings every watcher to the store's current revision after a
// snapshot replaced the store, or cancels it if the history it needs was
// compacted. The caller holds s.mu for writing.
func (h *watchHub) catchUp() {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.s.kv.Rev()
	for w := range h.ws {
		if w.nextRev > cur {
			continue
		}
		evs, err := h.s.kv.EventsSince(w.nextRev)
		if err != nil {
			w.stream.enqueue(&pb.WatchResponse{Header: &pb.ResponseHeader{Revision: cur}, WatchId: w.id, Canceled: true,
				CompactRevision: h.s.kv.CompactRev(), CancelReason: rpctypes.ErrGRPCCompacted.Error()})
			delete(h.ws, w)
			h.count.Add(-1)
			continue
		}
		evs = h.filter(w, evs)
		for len(evs) > 0 {
			n := 1
			for n < len(evs) && evs[n].Kv.ModRevision == evs[0].Kv.ModRevision {
				n++
			}
			w.stream.enqueue(&pb.WatchResponse{Header: &pb.ResponseHeader{Revision: evs[0].Kv.ModRevision}, WatchId: w.id, Events: evs[:n]})
			evs = evs[n:]
		}
		w.nextRev = cur + 1
	}
}

func (h *watchHub) add(w *watcher) {
	h.mu.Lock()
	h.ws[w] = struct{}{}
	h.mu.Unlock()
	h.count.Add(1)
}

func (h *watchHub) remove(w *watcher) bool {
	h.mu.Lock()
	_, ok := h.ws[w]
	delete(h.ws, w)
	h.mu.Unlock()
	if ok {
		h.count.Add(-1)
	}
	return ok
}

func (h *watchHub) closeAll() {
	h.mu.Lock()
	streams := map[*watchStream]struct{}{}
	for w := range h.ws {
		streams[w.stream] = struct{}{}
	}
	h.mu.Unlock()
	for st := range streams {
		st.fail(rpctypes.ErrGRPCStopped)
	}
}

// WatcherCount is the number of active watchers.
func (s *Server) WatcherCount() int { return int(s.watches.count.Load()) }

// WatchService returns the Watch service.
func (s *Server) WatchService() pb.WatchServer { return &Watch{s: s} }

// Watch implements etcd's Watch service.
type Watch struct {
	pb.UnimplementedWatchServer
	s *Server
}

// watchStream is one client stream with its watchers and send queue.
type watchStream struct {
	mu       sync.Mutex
	queue    []*pb.WatchResponse
	wake     chan struct{}
	err      error
	watchers map[int64]*watcher
	nextID   int64
}

func (st *watchStream) enqueue(r *pb.WatchResponse) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err != nil {
		return
	}
	if len(st.queue) >= maxQueued {
		st.err = errors.New("etcdserver: watch stream too slow")
	} else {
		st.queue = append(st.queue, r)
	}
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

func (st *watchStream) fail(err error) {
	st.mu.Lock()
	if st.err == nil {
		st.err = err
	}
	st.mu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// Watch serves one bidirectional watch stream.
func (ws *Watch) Watch(stream pb.Watch_WatchServer) error {
	s := ws.s
	st := &watchStream{wake: make(chan struct{}, 1), watchers: map[int64]*watcher{}}
	defer func() {
		st.mu.Lock()
		list := make([]*watcher, 0, len(st.watchers))
		for _, w := range st.watchers {
			list = append(list, w)
		}
		st.mu.Unlock()
		for _, w := range list {
			s.watches.remove(w)
		}
	}()
	recvErr := make(chan error, 1)
	go func() { recvErr <- ws.recvLoop(stream, st) }()

	interval := s.cfg.WatchProgressNotifyInterval
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		st.mu.Lock()
		q := st.queue
		st.queue = nil
		err := st.err
		st.mu.Unlock()
		for _, r := range q {
			r.Header = s.header(r.Header)
			if err := stream.Send(r); err != nil {
				return err
			}
		}
		if err != nil && len(q) == 0 {
			return err
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-st.wake:
		case err := <-recvErr:
			return err
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-tick.C:
			ws.progressTick(st)
		}
	}
}

// progressTick sends an empty response with the current revision to each
// progress_notify watcher that had no events in the last interval.
func (ws *Watch) progressTick(st *watchStream) {
	s := ws.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.watches.mu.Lock()
	defer s.watches.mu.Unlock()
	st.mu.Lock()
	var due []*watcher
	for _, w := range st.watchers {
		if w.progress && !w.sentSince {
			due = append(due, w)
		}
		w.sentSince = false
	}
	st.mu.Unlock()
	rev := s.kv.Rev()
	for _, w := range due {
		if behind(w, rev) {
			continue
		}
		st.enqueue(&pb.WatchResponse{Header: &pb.ResponseHeader{Revision: rev}, WatchId: w.id})
	}
}

// behind says whether w starts past rev, this member's revision: a client
// resuming its watch on a member that is behind the one it left. Progress
// at rev would take back events it was already sent, so, as etcd does,
// only a watcher that is caught up hears of progress. The caller holds
// the hub's lock.
func behind(w *watcher, rev int64) bool { return w.nextRev > rev+1 }

func (ws *Watch) recvLoop(stream pb.Watch_WatchServer, st *watchStream) error {
	s := ws.s
	return eachRequest(stream.Recv, func(req *pb.WatchRequest) error {
		switch r := req.RequestUnion.(type) {
		case *pb.WatchRequest_CreateRequest:
			ws.create(st, r.CreateRequest)
		case *pb.WatchRequest_CancelRequest:
			id := r.CancelRequest.WatchId
			st.mu.Lock()
			w := st.watchers[id]
			delete(st.watchers, id)
			st.mu.Unlock()
			if w != nil && s.watches.remove(w) {
				st.enqueue(&pb.WatchResponse{Header: &pb.ResponseHeader{}, WatchId: id, Canceled: true})
			}
		case *pb.WatchRequest_ProgressRequest:
			// Under the read lock every event up to the current revision
			// is already queued, so the notification cannot overtake one.
			s.mu.RLock()
			rev := s.kv.Rev()
			s.watches.mu.Lock()
			st.mu.Lock()
			synced := true
			for _, w := range st.watchers {
				synced = synced && !behind(w, rev)
			}
			st.mu.Unlock()
			s.watches.mu.Unlock()
			if synced {
				st.enqueue(&pb.WatchResponse{Header: &pb.ResponseHeader{Revision: rev}, WatchId: -1})
			}
			s.mu.RUnlock()
		}
		return nil
	})
}

func (ws *Watch) create(st *watchStream, cr *pb.WatchCreateRequest) {
	s := ws.s
	st.mu.Lock()
	id := cr.WatchId
	if id == 0 {
		for {
			if _, used := st.watchers[st.nextID]; !used {
				break
			}
			st.nextID++
		}
		id = st.nextID
		st.nextID++
	} else if _, used := st.watchers[id]; used {
		st.mu.Unlock()
		st.enqueue(&pb.WatchResponse{Header: &pb.ResponseHeader{}, WatchId: id, Created: true, Canceled: true,
			CancelReason: "etcdserver: duplicate watch ID"})
		return
	}
	st.mu.Unlock()
	if len(cr.Key) == 0 {
		st.enqueue(&pb.WatchResponse{Header: &pb.ResponseHeader{}, WatchId: id, Created: true, Canceled: true,
			CancelReason: rpctypes.ErrGRPCEmptyKey.Error()})
		return
	}
	w := &watcher{id: id, key: cr.Key, end: cr.RangeEnd, prevKV: cr.PrevKv, progress: cr.ProgressNotify, stream: st}
	for _, f := range cr.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			w.noPut = true
		case pb.WatchCreateRequest_NODELETE:
			w.noDelete = true
		}
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	cur := s.kv.Rev()
	start := cr.StartRevision
	st.enqueue(&pb.WatchResponse{Header: &pb.ResponseHeader{Revision: cur}, WatchId: id, Created: true})
	if start > 0 && start <= cur {
		evs, err := s.kv.EventsSince(start)
		if err != nil {
			st.enqueue(&pb.WatchResponse{Header: &pb.ResponseHeader{Revision: cur}, WatchId: id, Canceled: true,
				CompactRevision: s.kv.CompactRev(), CancelReason: rpctypes.ErrGRPCCompacted.Error()})
			return
		}
		s.watches.mu.Lock()
		evs = s.watches.filter(w, evs)
		s.watches.mu.Unlock()
		// Replay in responses that never split a revision.
		for len(evs) > 0 {
			n := 0
			for n < len(evs) && (n < 1000 || evs[n].Kv.ModRevision == evs[n-1].Kv.ModRevision) {
				n++
			}
			st.enqueue(&pb.WatchResponse{Header: &pb.ResponseHeader{Revision: cur}, WatchId: id, Events: evs[:n]})
			evs = evs[n:]
		}
		w.nextRev = cur + 1
	} else if start > cur {
		w.nextRev = start
	} else {
		w.nextRev = cur + 1
	}
	st.mu.Lock()
	st.watchers[id] = w
	st.mu.Unlock()
	s.watches.add(w)
}
