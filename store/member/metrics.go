package member

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler exposes a member's state under etcd's metric names where one
// exists, so dashboards built for etcd read kvnode too. Each member has its
// own registry so several can run in one process (tests).
func metricsHandler(m *Member) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("etcd_server_has_leader", "Whether a leader exists (1) or not (0).", func() float64 {
		if m.node.Leader() != 0 {
			return 1
		}
		return 0
	})
	gauge("etcd_server_is_leader", "Whether this member is the leader.", func() float64 {
		if m.node.Leader() == m.node.ID() {
			return 1
		}
		return 0
	})
	gauge("etcd_server_proposals_committed_total", "The committed Raft index.", func() float64 { return float64(m.node.CommitIndex()) })
	gauge("etcd_server_proposals_applied_total", "The applied Raft index.", func() float64 { return float64(m.node.AppliedIndex()) })
	gauge("etcd_server_term", "The current Raft term.", func() float64 { return float64(m.node.Term()) })
	gauge("etcd_debugging_mvcc_current_revision", "The current MVCC revision.", func() float64 { return float64(m.srv.Revision()) })
	gauge("etcd_debugging_mvcc_compact_revision", "The last compaction revision.", func() float64 { return float64(m.srv.CompactRevision()) })
	gauge("etcd_mvcc_db_total_size_in_bytes", "Approximate size of the key space.", func() float64 { return float64(m.srv.ApproxSize()) })
	gauge("etcd_debugging_mvcc_watcher_total", "Number of watchers.", func() float64 { return float64(m.srv.WatcherCount()) })
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
