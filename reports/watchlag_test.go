package reports

import (
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
)

func TestWatchDelivery(t *testing.T) {
	ms := int64(time.Millisecond)
	op := func(f string, done int64, rev int64, evs ...int64) history.Op {
		c := history.Event{Type: history.OK, F: f, Time: done, Revision: rev}
		for _, r := range evs {
			c.WatchEvents = append(c.WatchEvents, history.WatchEvent{Type: "put", KV: history.KV{Key: "k", ModRevision: r}})
		}
		return history.Op{F: f, Invoke: &history.Event{Type: history.Invoke, F: f, Time: done - ms}, Complete: &c}
	}
	ops := []history.Op{
		op("watch-put", 100*ms, 5),
		op("watch-put", 110*ms, 6),
		// A read at 105 ms saw revision 6 already: 6 existed then.
		op("kv-get", 105*ms, 6),
		op("watch-recv", 130*ms, 0, 5, 6), // 30 ms after 5, 25 ms after 6
		op("watch-recv", 90*ms, 0, 5),     // before any client saw 5: 0
		op("watch-recv", 200*ms, 0, 9),    // 9 never seen by any operation: left out
	}
	lag := watchDelivery(ops)
	if lag.Events != 3 {
		t.Fatalf("%d events measured, want 3", lag.Events)
	}
	if lag.Millis.Max != 30 || lag.Millis.P50 != 25 {
		t.Fatalf("lag %+v, want max 30 ms and median 25 ms", lag.Millis)
	}
}

func TestDistributionPlot(t *testing.T) {
	p, err := distributionPlot("watch delivery lag", "lag (ms)", []namedDist{{"every watch event", checker.Distribute([]float64{1, 2, 3, 40})}})
	if err != nil {
		t.Fatal(err)
	}
	if err := parseXML(string(p.SVG)); err != nil || !strings.Contains(string(p.SVG), `aria-label="watch delivery lag"`) {
		t.Fatalf("plot does not parse or is unnamed: %v", err)
	}
	if len(p.Legend) != 1 || p.Legend[0].Text != "every watch event" {
		t.Fatalf("legend %+v", p.Legend)
	}
}
