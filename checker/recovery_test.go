package checker

import (
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

func TestRecovery(t *testing.T) {
	op := history.Event{Type: history.OK, Process: 1, F: history.Read, Time: 10e9}
	final := func(err string) history.Event {
		return history.Event{Type: history.Info, Process: history.Nemesis, F: history.Recover, FaultInfo: &history.FaultInfo{Fault: history.Final}, Time: 12e9, Error: err}
	}
	recovery := func(events ...history.Event) Result { return Recovery(t.Context(), &Input{Events: events}) }
	if res := recovery(op); res.Verdict != Unknown {
		t.Errorf("a history without a final phase: %+v, want unknown", res)
	}
	res := recovery(op, final(""))
	if res.Verdict != Valid || !strings.Contains(res.Summary, "2.000s after the final heal") {
		t.Errorf("recovered: %+v", res)
	}
	res = recovery(op, final("the cluster did not settle after the final heal: no single leader"))
	if res.Verdict != Invalid || len(res.Anomalies) != 1 || !strings.Contains(res.Anomalies[0], "no single leader") {
		t.Errorf("not recovered: %+v", res)
	}
}
