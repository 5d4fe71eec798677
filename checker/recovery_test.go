package checker

import (
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

func TestRecovery(t *testing.T) {
	op := history.Event{Type: history.OK, Process: 1, F: history.Read, Time: 10e9}
	final := func(err string) history.Event {
		return history.Event{Type: history.Info, Process: history.Nemesis, F: history.Recover, Fault: history.Final, Time: 12e9, Error: err}
	}
	if _, ok := Recovery([]history.Event{op}); ok {
		t.Error("a history without a final phase was judged")
	}
	res, ok := Recovery([]history.Event{op, final("")})
	if !ok || res.Verdict != Valid || !strings.Contains(res.Summary, "2.000s after the final heal") {
		t.Errorf("recovered: %+v", res)
	}
	res, ok = Recovery([]history.Event{op, final("the cluster did not settle after the final heal: no single leader")})
	if !ok || res.Verdict != Invalid || len(res.Anomalies) != 1 || !strings.Contains(res.Anomalies[0], "no single leader") {
		t.Errorf("not recovered: %+v", res)
	}
}
