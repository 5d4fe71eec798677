// Package reports writes a run's index.html: the verdict first, then what
// ran, the operation statistics, latency and throughput plots with the
// fault windows shaded, and links to the member logs.
//
// The page is self-contained (inline CSS and SVG, no script, no network
// references) so it can be attached to a CI run and opened offline. Beside
// it, timeline.html draws every operation per process (timeline.go); it is
// as self-contained, with its script inline.
package reports

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/checker"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/rundir"
)

//go:embed *.html.tmpl
var templates embed.FS

// pages holds every page's template; style.html.tmpl is the look they share.
var pages = template.Must(template.ParseFS(templates, "*.html.tmpl"))

// maxAnomalies bounds the evidence listed per checker: a badly broken run
// can name thousands of operations, and results.json keeps them all.
const maxAnomalies = 50

// Write renders dir/index.html for the run r whose history is events.
// events may be nil (the plots are then left out); r may not.
func Write(dir string, r *rundir.Results, events []history.Event) error {
	if r == nil {
		return errors.New("writing report: no results")
	}
	pg := page{
		Title:    r.Config.Name,
		Verdict:  verdictClass(r.Verdict),
		Problems: r.Problems,
		Config:   configRows(r.Config),
		Members:  r.Config.Members,
		Command:  r.Config.Command,
		Started:  "—",
		Duration: durationText(r.Duration),
		Phases:   PhasesText(r.Phases),
		Ops:      r.Stats.Ops,
		Seconds:  r.Stats.Seconds,
	}
	if u := r.Unfinished; u != nil {
		pg.Unfinished = u.Summary
		if r.Duration == 0 {
			// A killed harness never learnt how long it ran.
			pg.Duration = fmt.Sprintf("%.1f s recorded", time.Duration(u.Recorded).Seconds())
		}
	}
	if pg.Title == "" {
		pg.Title = "faultline run"
	}
	if !r.Started.IsZero() {
		pg.Started = r.Started.UTC().Format("2006-01-02 15:04:05 MST")
	}
	for _, c := range r.Checks {
		row := checkRow(c)
		row.Drawing = drawing(dir, c.Visualization)
		pg.Checks = append(pg.Checks, row)
	}

	faults := history.Faults(events)
	if len(faults) == 0 {
		faults = r.Faults
	}
	settled := false
	for _, e := range events {
		switch {
		case e.IsFinal():
			settled = true
		case e.Process == history.Nemesis && e.F == history.Leader:
			l := leaderRow{Time: fmt.Sprintf("%.1f s", seconds(e.Time)), Leader: "none", Term: e.Term, Settled: settled}
			if len(e.Nodes) > 0 {
				l.Leader = e.Nodes[0]
			}
			pg.Leaders = append(pg.Leaders, l)
		}
	}
	ops, opsErr := history.Ops(events) // a malformed history is reported by plot
	if events != nil && opsErr == nil {
		// A report without its timeline beats no report.
		if err := writeTimeline(dir, r, events, ops); err != nil {
			pg.TimelineProblem = err.Error()
		} else {
			pg.Timeline = relHref(rundir.TimelineFile)
		}
	}
	if pg.Timeline != "" {
		for i := range pg.Checks {
			for j := range pg.Checks[i].Anomalies {
				a := &pg.Checks[i].Anomalies[j]
				a.Timeline = timelineHref(a.Where + a.Text)
			}
		}
	}
	if st := r.Stats.Staleness; st != nil {
		pg.Staleness = stalenessRows(*st)
		var revs, ms []namedDist
		for _, r := range pg.Staleness {
			revs = append(revs, namedDist{r.Member, r.Revs})
			ms = append(ms, namedDist{r.Member, r.Millis})
		}
		pg.StaleRevsPlot, _ = distributionPlot("serializable reads: revisions behind", "revisions behind", revs)
		pg.StaleMsPlot, _ = distributionPlot("serializable reads: milliseconds behind", "ms behind", ms)
	}
	pg.WatchLag = watchDelivery(ops)
	if pg.WatchLag.Events > 0 {
		pg.WatchLagPlot, _ = distributionPlot("watch delivery lag", "lag (ms)", []namedDist{{"every watch event", pg.WatchLag.Millis}})
	}
	for i, w := range faults {
		f := faultRow(w, ops)
		f.N = i + 1
		pg.Faults = append(pg.Faults, f)
	}
	if len(faults) > 0 && len(ops) > 0 {
		var err error
		if pg.RecoveryPlot, pg.AvailPlot, err = windowPlots(faults, ops); err != nil {
			pg.PlotProblem = err.Error()
		}
	}
	if err := pg.plot(ops, opsErr, faults); err != nil {
		// A report that says why its plots are missing beats no report.
		pg.PlotProblem = err.Error()
	}
	pg.Logs, pg.LogsProblem = listLogs(filepath.Join(dir, rundir.LogsDir))

	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "report.html.tmpl", pg); err != nil {
		return fmt.Errorf("rendering report: %w", err)
	}
	if err := rundir.WriteFile(filepath.Join(dir, rundir.ReportFile), buf.Bytes()); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

type page struct {
	Title       string
	Verdict     string
	Checks      []check
	Problems    []string
	Config      []row
	Members     []rundir.Member
	Command     string
	Started     string
	Duration    string
	Phases      string
	Ops         []checker.OpStats
	Seconds     float64
	Latency     plotted
	Percentiles plotted
	Throughput  plotted
	HasPlots    bool
	PlotProblem string
	Faults      []fault
	Leaders     []leaderRow
	Staleness   []stalenessRow
	WatchLag    watchLag
	// Plots beside the tables they draw.
	RecoveryPlot, AvailPlot, StaleRevsPlot, StaleMsPlot, WatchLagPlot plotted
	Logs                                                              []logFile
	LogsProblem                                                       string
	// Timeline links timeline.html, when it was written; TimelineProblem
	// says why it was not.
	Timeline, TimelineProblem string
	// Unfinished says how much of a run that did not finish was recorded.
	Unfinished string
}

type check struct {
	Name, Verdict, Summary string
	Anomalies              []anomaly
	More                   int
	VisHref, Vis           string
	// Drawing is a visualization that is a drawing (the transaction
	// checkers' cycles, SVG), shown in place as well as linked.
	Drawing template.HTML
}

// anomaly is one piece of a checker's evidence. One that quotes a member
// log ("logs/n1.log:12: …", as the logs checker names lines) links the log
// from Where, the file and line; a browser cannot open a plain text file
// at a line, so the line number is only named.
//
// Timeline links the operations it names in the timeline, if any.
type anomaly struct{ Where, Href, Text, Timeline string }

func newAnomaly(a string) anomaly {
	file, rest, ok := strings.Cut(a, ":")
	if !ok || !strings.HasPrefix(file, rundir.LogsDir+"/") || !strings.HasSuffix(file, ".log") {
		return anomaly{Text: a}
	}
	where := file
	if n, after, ok := strings.Cut(rest, ":"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		where, rest = file+":"+n, after
	}
	return anomaly{Where: where, Href: relHref(file), Text: ":" + rest}
}

type row struct{ Key, Value string }

type fault struct {
	N                                            int
	Fault, Mechanism, Nodes, Start, Stop, Length string
	// Effects are what the fault did to each member, "n1: dropped …".
	Effects []string
	// Recovery is the time from heal to a whole cluster again.
	Recovery, NotRecovered string
	// During counts the operations invoked inside the window that
	// succeeded.
	During availability
}

// stalenessRow is how far behind one member's serializable reads were, or
// all members' ("all").
type stalenessRow struct {
	Member       string
	Reads, Stale int
	Revs, Millis checker.Distribution
}

func stalenessRows(st checker.Staleness) []stalenessRow {
	var rows []stalenessRow
	names := make([]string, 0, len(st.Members))
	for m := range st.Members {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		ms := st.Members[m]
		rows = append(rows, stalenessRow{Member: m, Reads: ms.Reads, Stale: ms.Stale, Revs: ms.Revisions, Millis: ms.Millis})
	}
	return append(rows, stalenessRow{Member: "all", Reads: st.Reads, Stale: st.Stale, Revs: st.Revisions, Millis: st.Millis})
}

// leaderRow is one change of leader, or the leader the cluster settled
// on after the final heal.
type leaderRow struct {
	Time, Leader string
	Term         uint64
	Settled      bool
}

type logFile struct {
	Name, Href, Size string
}

func (pg *page) plot(ops []history.Op, err error, faults []history.Window) error {
	if err != nil {
		return fmt.Errorf("the history cannot be plotted: %w", err)
	}
	if len(ops) == 0 {
		return errors.New("the history holds no client operations to plot")
	}
	tl := newTimeline(ops, faults)
	if pg.Latency, err = latencyPlot(tl); err != nil {
		return err
	}
	if pg.Throughput, err = throughputPlot(tl); err != nil {
		return err
	}
	if pg.Percentiles, err = percentilePlot(ops); err != nil {
		return err
	}
	pg.HasPlots = true
	return nil
}

func verdictClass(v checker.Verdict) string {
	switch v {
	case checker.Valid, checker.Invalid:
		return string(v)
	}
	// No verdict at all is no better than one the checker could not reach.
	return string(checker.Unknown)
}

func checkRow(c checker.Result) check {
	out := check{Name: c.Checker, Verdict: verdictClass(c.Verdict), Summary: c.Summary}
	for _, a := range c.Anomalies[:min(len(c.Anomalies), maxAnomalies)] {
		out.Anomalies = append(out.Anomalies, newAnomaly(a))
	}
	out.More = len(c.Anomalies) - len(out.Anomalies)
	if c.Visualization != "" {
		out.Vis = filepath.ToSlash(c.Visualization)
		out.VisHref = relHref(out.Vis)
	}
	return out
}

// drawing is the SVG a checker drew at vis, made fit to inline (the
// report holds no URL, so the namespace goes: HTML knows svg), or "" when
// vis is not such a drawing. Only a plain drawing is inlined: the file
// comes from the run's folder, and nothing in it may run.
func drawing(dir, vis string) template.HTML {
	if !strings.HasSuffix(vis, ".svg") {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(dir, vis))
	const ns = ` xmlns="http://www.w3.org/2000/svg"`
	if err != nil || len(b) > 1<<20 || !bytes.HasPrefix(b, []byte("<svg"+ns)) {
		return ""
	}
	low := bytes.ToLower(b)
	for _, bad := range []string{"<script", "<foreignobject", "href", "url(", "<iframe", "<image"} {
		if bytes.Contains(low, []byte(bad)) {
			return ""
		}
	}
	if eventAttr.Match(low) {
		return ""
	}
	return template.HTML(strings.ReplaceAll(string(b), ns, ""))
}

// eventAttr is an attribute that runs script (onload=, onclick=, …).
var eventAttr = regexp.MustCompile(`\son[a-z]+\s*=`)

// relHref makes a path relative to the run directory into a link that
// stays relative: a '#', '?' or ':' in a file name must not turn it into a
// fragment, a query or a scheme.
func relHref(p string) string {
	return (&url.URL{Path: "./" + path.Clean(p)}).String()
}

func configRows(c rundir.Config) []row {
	target := c.Target
	if c.Version != "" {
		target += " " + c.Version
	}
	rate := "unlimited"
	if c.Rate > 0 {
		rate = strconv.FormatFloat(c.Rate, 'f', -1, 64) + " ops/s"
	}
	seed := "" // runs from before there were seeds
	if c.Seed != 0 {
		seed = strconv.FormatInt(c.Seed, 10)
	}
	windows := []row{
		{"nemesis interval", durationText(c.NemesisInterval)},
		{"nemesis duration", durationText(c.NemesisDuration)},
	}
	if c.Schedule != nil {
		windows = []row{{"nemesis schedule", scheduleText(c.ScheduleFile, *c.Schedule)}}
	}
	rows := slices.Concat([]row{
		{"target", target},
		{"nodes", strconv.Itoa(c.Nodes)},
		{"workload", c.Workload},
		{"nemesis", c.Nemesis},
		{"workers", strconv.Itoa(c.Workers)},
		{"keys", fmt.Sprintf("%d at a time, %d operations each", c.Keys, c.OpsPerKey)},
		{"unsafe bug", c.UnsafeBug},
		{"member flags", strings.Join(c.MemberFlags, " ")},
		{"run id", c.RunID},
		{"rate", rate},
		{"seed", seed},
		{"time limit", durationText(c.TimeLimit)},
		{"op timeout", durationText(c.OpTimeout)},
	}, windows, []row{
		{"check timeout", durationText(c.CheckTimeout)},
		{"check memory", checkMemoryText(c.CheckMemory)},
		{"read consistency", c.ReadConsistency},
		{"client mode", c.ClientMode},
		{"runtime", runtimeText(c.Runtime)},
		{"image", c.ImageReference},
		{"binary", c.Binary},
	})
	if c.DiskMode != "" {
		rows = append(rows, row{"disk mode", c.DiskMode + " (which syncs make directory changes durable)"})
	}
	for i := range rows {
		if rows[i].Value == "" {
			rows[i].Value = "—"
		}
	}
	return rows
}

// runtimeText says where the members ran; runs from before there was a
// choice ran in containers.
func runtimeText(r string) string {
	if r == "local" {
		return "local (processes of the machine that ran the test)"
	}
	return "docker (containers on a private network)"
}

// scheduleText is a schedule on one line: its file, each step as quiet
// then fault for its length, whether it repeats, and the jitter.
func scheduleText(file string, s rundir.Schedule) string {
	var steps []string
	for _, st := range s.Steps {
		steps = append(steps, fmt.Sprintf("%s quiet, %s for %s", time.Duration(st.Quiet), st.Fault, time.Duration(st.For)))
	}
	once := "repeated"
	if !s.Repeat {
		once = "once"
	}
	text := fmt.Sprintf("%s (%s, jitter ±%.3g%%)", strings.Join(steps, "; "), once, s.Jitter*100)
	if file != "" {
		text = filepath.Base(file) + ": " + text
	}
	return text
}

// PhasesText says where a run's time went, for the report and the
// command line; runs from before it was recorded say nothing.
func PhasesText(ps []rundir.Phase) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s %.1f s", p.Name, time.Duration(p.Took).Seconds()))
	}
	return strings.Join(parts, ", ")
}

func checkMemoryText(gib float64) string {
	if gib <= 0 {
		return "half this machine's memory"
	}
	return strconv.FormatFloat(gib, 'f', -1, 64) + " GiB"
}

func durationText(d rundir.Duration) string {
	if d == 0 {
		return "—"
	}
	return time.Duration(d).String()
}

func faultRow(w history.Window, ops []history.Op) fault {
	f := fault{Fault: w.Fault, Mechanism: w.Mechanism, Start: fmt.Sprintf("%.1f s", seconds(w.Start)), Stop: "not healed", Length: "—",
		Recovery: "—", NotRecovered: w.NotRecovered}
	f.During, _ = splitAvailability(ops, []history.Window{w})
	if w.Recovered >= 0 && w.Stop >= 0 {
		f.Recovery = fmt.Sprintf("%.1f s", seconds(w.Recovered-w.Stop))
	} else if w.NotRecovered != "" {
		f.Recovery = "not recovered"
	}
	for i, n := range w.Nodes {
		if i > 0 {
			f.Nodes += ", "
		}
		f.Nodes += n
		if e, ok := w.Effects[n]; ok {
			f.Effects = append(f.Effects, n+": "+e)
		}
	}
	if w.Stop >= 0 {
		f.Stop = fmt.Sprintf("%.1f s", seconds(w.Stop))
		f.Length = fmt.Sprintf("%.1f s", seconds(w.Stop-w.Start))
	}
	return f
}

// listLogs lists every file under the logs directory, as links relative to
// the run directory.
func listLogs(dir string) ([]logFile, string) {
	var logs []logFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		size := ""
		if info, err := d.Info(); err == nil {
			size = byteSize(info.Size())
		}
		logs = append(logs, logFile{Name: name, Href: relHref(rundir.LogsDir + "/" + name), Size: size})
		return nil
	})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "No member logs were saved for this run."
	case err != nil:
		return logs, fmt.Sprintf("Listing the member logs failed: %v", err)
	case len(logs) == 0:
		return nil, "No member logs were saved for this run."
	}
	return logs, ""
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
