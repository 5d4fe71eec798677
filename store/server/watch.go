package server

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// eventBatch is the events of one revision.
type eventBatch struct {
	rev    int64
	events []*mvccpb.Event
}

type watchHub struct{ s *Server }

func newWatchHub(s *Server) *watchHub { return &watchHub{s: s} }

func (h *watchHub) notify(b *eventBatch) {}

func (h *watchHub) closeAll() {}

// WatchService returns the Watch service.
func (s *Server) WatchService() pb.WatchServer { return &Watch{s: s} }

// Watch implements etcd's Watch service.
type Watch struct {
	pb.UnimplementedWatchServer
	s *Server
}

// WatcherCount is the number of active watchers.
func (s *Server) WatcherCount() int { return 0 }
