package reports

import (
	"html"
	"regexp"
	"strings"
	"testing"
)

// TestReportOfRealRun renders the report of a small real run kept in
// testdata/smallrun: 8 s of the register workload on 3 etcd members at 60
// ops/s, the leader killed twice.
func TestReportOfRealRun(t *testing.T) {
	dir, r, events := smallRun(t)
	doc := writeReport(t, dir, r, events)
	for _, want := range []string{
		`<div class="verdict valid">valid`,
		html.EscapeString(r.Config.Command),
		`aria-label="latency of every operation over time"`,
		`aria-label="throughput over time"`,
		`aria-label="latency percentiles per operation"`,
		`aria-label="time to recover after each fault"`,
		`aria-label="operations ok during each fault"`,
		"linearizable-register", "recovery",
		"kill-leader n1", "kill-leader n2", // the fault bands
		`<td>n2</td><td class="num">3</td>`, // n2 took over in term 3
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Every inline SVG parses: the two plots and the legend's icons.
	// Latency over time, percentiles, throughput, and per fault window the
	// time to recover and the operations ok.
	if n := len(regexp.MustCompile(`<svg viewBox[^>]*aria-label="[^"]+"`).FindAllString(doc, -1)); n != 5 {
		t.Errorf("%d plots, want 5", n)
	}
	for i, s := range regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(doc, -1) {
		if err := parseXML(s); err != nil {
			t.Errorf("svg %d does not parse: %v", i, err)
		}
	}
	if n := len(regexp.MustCompile(`<tr><td class="num">\d</td><td>kill-leader</td>`).FindAllString(doc, -1)); n != 2 {
		t.Errorf("%d kill-leader rows in the fault table, want 2", n)
	}
}
